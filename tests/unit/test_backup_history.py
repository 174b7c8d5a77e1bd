"""`[backup] history_days`: validated in the config, passed to the sidecar, and the snapshot
retention Litestream gets keeps a snapshot at or before the oldest point of the window."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_config
from pds_aws.backup.plan import SNAPSHOT_INTERVAL, litestream_config, snapshot_retention
from pds_aws.backup.settings import SettingsError, settings_from_env
from pds_aws.config import ConfigError


def hours(duration: str) -> int:
    assert duration.endswith("h"), duration
    return int(duration[:-1])


def test_history_days_defaults_to_30_and_is_validated() -> None:
    assert make_config().backup.history_days == 30
    assert make_config(backup={"history_days": 7}).backup.history_days == 7
    with pytest.raises(ConfigError, match="history_days"):
        make_config(backup={"history_days": 0})


def test_snapshots_outlive_the_window_by_one_interval() -> None:
    """Litestream 0.5 (store.go EnforceSnapshotRetention) deletes snapshots older than the
    retention and the lower-level files before the oldest kept one: a restore to a point
    `history_days` ago needs the snapshot taken up to one interval before it."""
    for days in (1, 30, 365):
        assert hours(snapshot_retention(days)) == days * 24 + hours(SNAPSHOT_INTERVAL)
    config = litestream_config("/pds", "s3://b/p", 30)
    assert config["snapshot"] == {"interval": SNAPSHOT_INTERVAL, "retention": "744h"}


def test_the_sidecar_reads_its_history_from_the_environment(tmp_path: Path) -> None:
    env = {"BACKUP_URL": f"file://{tmp_path}", "PDS_DATA_DIRECTORY": str(tmp_path / "d")}
    assert settings_from_env(env).history_days == 30
    assert settings_from_env({**env, "BACKUP_HISTORY_DAYS": "90"}).history_days == 90
    with pytest.raises(SettingsError, match="BACKUP_HISTORY_DAYS='two'"):
        settings_from_env({**env, "BACKUP_HISTORY_DAYS": "two"})
