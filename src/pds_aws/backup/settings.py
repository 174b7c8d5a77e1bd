"""The sidecar's settings, read once from its environment (the task definition sets them)."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pds_aws.errors import PdsAwsError
from pds_aws.names import DATA_DIRECTORY, PDS_HEALTH_URL

# `[backup] history_days`: how far back a point-in-time restore reaches (plan.py).
DEFAULT_HISTORY_DAYS = 30

DEFAULT_DATA_DIRECTORY = DATA_DIRECTORY
# The PDS container of the same task: Fargate's containers share localhost. The task
# definition sets PDS_HEALTH_URL explicitly (the same name), so this default is for tools
# run beside it.
DEFAULT_PDS_HEALTH_URL = PDS_HEALTH_URL
# PDS_HEALTH_URL=none: no PDS runs beside this sidecar (tests that stand in for the PDS,
# benchmarks); replication starts right after the restore.
NO_PDS = "none"


DEFAULT_LEASE_S = 240.0


class SettingsError(PdsAwsError):
    """A missing or malformed environment variable; the message names it and the fix."""


@dataclass(frozen=True)
class BackupUrl:
    """Where backups live: an S3 bucket + key prefix, or a local directory (`file://`)."""

    scheme: Literal["s3", "file"]
    bucket: str  # "" for file://
    prefix: str  # S3 key prefix without slashes at either end; for file:// the absolute path

    def __str__(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"file://{self.prefix}"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    backup_url: BackupUrl
    region: str | None
    s3_endpoint: str | None
    state_dir: Path
    litestream_bin: str
    # Litestream starts only once this answers (the PDS has migrated its databases); None:
    # no PDS beside the sidecar, replicate right after the restore.
    pds_health_url: str | None = DEFAULT_PDS_HEALTH_URL
    # The single-writer lease's length (pds_aws.backup.lease); tests and benchmarks shorten it
    # with BACKUP_LEASE_SECONDS so that a crashed sidecar's lease expires in seconds.
    lease_s: float = DEFAULT_LEASE_S
    history_days: int = DEFAULT_HISTORY_DAYS  # BACKUP_HISTORY_DAYS, from `[backup] history_days`


def parse_backup_url(value: str) -> BackupUrl:
    """Parse `BACKUP_URL`: `s3://bucket/prefix` (prefix optional) or `file:///absolute/path`."""
    example = "s3://my-backup-bucket/pds or file:///var/backups/pds"
    parts = urlsplit(value.strip())
    if parts.scheme == "s3":
        if not parts.netloc:
            raise SettingsError(f"BACKUP_URL={value!r} has no bucket name; use e.g. {example}")
        if parts.query or parts.fragment:
            raise SettingsError(
                f"BACKUP_URL={value!r} must not carry a query; set the endpoint with "
                "AWS_ENDPOINT_URL_S3 and the region with AWS_REGION"
            )
        return BackupUrl("s3", parts.netloc, parts.path.strip("/"))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise SettingsError(
                f"BACKUP_URL={value!r} must be an absolute file:/// URL; e.g. {example}"
            )
        return BackupUrl("file", "", parts.path.rstrip("/") or "/")
    raise SettingsError(f"BACKUP_URL={value!r} is neither s3:// nor file://; use e.g. {example}")


def parse_pds_health_url(value: str | None) -> str | None:
    """`PDS_HEALTH_URL`: an http(s) URL, unset (the default), or `none`."""
    raw = (value or "").strip()
    if not raw:
        return DEFAULT_PDS_HEALTH_URL
    if raw.lower() == NO_PDS:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"PDS_HEALTH_URL={raw!r} is not an http(s) URL; use e.g. {DEFAULT_PDS_HEALTH_URL} "
            f"(the PDS of the same task), or {NO_PDS!r} only when no PDS runs beside the sidecar"
        )
    return raw


def default_state_dir(data_dir: Path) -> Path:
    """Per data directory, so two local runtimes on one machine never share a health marker."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pds-aws-backup-{digest}"


def find_litestream() -> str:
    beside_python = Path(sys.executable).parent / "litestream"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("litestream") or "litestream"


def parse_lease_seconds(value: str | None) -> float:
    raw = (value or "").strip()
    if not raw:
        return DEFAULT_LEASE_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 3.0 <= seconds <= 3600.0:
        raise SettingsError(
            f"BACKUP_LEASE_SECONDS={raw!r} must be a number of seconds from 3 to 3600; leave it "
            f"unset for the default {DEFAULT_LEASE_S:.0f} (longer than ECS's 120 s stop timeout)"
        )
    return seconds


def parse_history_days(value: str | None) -> int:
    if not value:
        return DEFAULT_HISTORY_DAYS
    if not value.strip().isdigit() or int(value) < 1:
        raise SettingsError(
            f"BACKUP_HISTORY_DAYS={value!r} must be a whole number of days, 1 or more "
            "(it comes from `[backup] history_days` in the config)"
        )
    return int(value)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    url = env.get("BACKUP_URL", "").strip()
    if not url:
        raise SettingsError(
            "BACKUP_URL is not set; set it to s3://BUCKET/PREFIX (the backup bucket) "
            "or file:///PATH for a local run"
        )
    data_dir = Path(env.get("PDS_DATA_DIRECTORY") or DEFAULT_DATA_DIRECTORY)
    if not data_dir.is_absolute():
        raise SettingsError(
            f"PDS_DATA_DIRECTORY={str(data_dir)!r} must be an absolute path such as /pds"
        )
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    state = env.get("BACKUP_STATE_DIRECTORY")
    return Settings(
        data_dir=data_dir,
        backup_url=parse_backup_url(url),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        s3_endpoint=endpoint,
        state_dir=Path(state) if state else default_state_dir(data_dir),
        litestream_bin=env.get("LITESTREAM_BIN") or find_litestream(),
        pds_health_url=parse_pds_health_url(env.get("PDS_HEALTH_URL")),
        lease_s=parse_lease_seconds(env.get("BACKUP_LEASE_SECONDS")),
        history_days=parse_history_days(env.get("BACKUP_HISTORY_DAYS")),
    )
