"""The sidecar starts Litestream only once the PDS answers: settings and the waiting policy."""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path

import pytest

from pds_aws.backup import construct, health
from pds_aws.backup.settings import (
    DEFAULT_PDS_HEALTH_URL,
    SettingsError,
    parse_pds_health_url,
    settings_from_env,
)

BASE_ENV = {"BACKUP_URL": "file:///var/backups/pds", "PDS_DATA_DIRECTORY": "/pds"}


def test_default_is_the_pds_of_the_same_task() -> None:
    assert settings_from_env(BASE_ENV).pds_health_url == DEFAULT_PDS_HEALTH_URL
    # The task definition sets it from the PDS's port: the default is the same URL.
    assert construct.PDS_HEALTH_URL == DEFAULT_PDS_HEALTH_URL


def test_explicit_url_and_the_no_pds_opt_out() -> None:
    url = "http://127.0.0.1:4005/xrpc/_health"
    assert settings_from_env({**BASE_ENV, "PDS_HEALTH_URL": url}).pds_health_url == url
    assert settings_from_env({**BASE_ENV, "PDS_HEALTH_URL": "none"}).pds_health_url is None
    assert parse_pds_health_url(" NONE ") is None
    assert parse_pds_health_url("") == DEFAULT_PDS_HEALTH_URL


@pytest.mark.parametrize("bad", ["127.0.0.1:3000/xrpc/_health", "ftp://x/y", "http://", "no"])
def test_a_bad_url_names_the_setting_and_the_fix(bad: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_pds_health_url(bad)
    message = str(raised.value)
    assert "PDS_HEALTH_URL=" in message and bad in message
    assert DEFAULT_PDS_HEALTH_URL in message and "'none'" in message


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ManualStop(threading.Event):
    """A stop event whose wait advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock, stop_after: float | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.stop_after = stop_after
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        self.clock.now += timeout or 0
        if self.stop_after is not None and self.clock.now >= self.stop_after:
            self.set()
        return self.is_set()


def test_waits_until_the_pds_answers_uploading_keys_meanwhile() -> None:
    clock = FakeClock()
    stop = ManualStop(clock)
    answers = iter([False] * 150 + [True])  # 75 s of probes at 0.5 s
    ticks: list[float] = []
    lines: list[str] = []
    up = health.wait_for_pds(
        lambda: next(answers),
        stop,
        url="http://127.0.0.1:3000/xrpc/_health",
        on_tick=lambda: ticks.append(clock.now),
        clock=clock,
        report=lines.append,
    )
    assert up is True
    assert len(ticks) == 151  # one key-upload pass before every probe
    assert set(stop.waits) == {health.PDS_POLL_S}
    progress = [line for line in lines if line.startswith("still waiting")]
    assert [line.split("(")[1].split(" ")[0] for line in progress] == ["30", "60"]
    assert lines[-1] == "the PDS answers http://127.0.0.1:3000/xrpc/_health after 75.0 s"


def test_a_stop_signal_ends_the_wait() -> None:
    clock = FakeClock()
    stop = ManualStop(clock, stop_after=2.0)
    probes: list[float] = []

    def pds_up() -> bool:
        probes.append(clock.now)
        return False

    up = health.wait_for_pds(pds_up, stop, url="http://x/", clock=clock, report=lambda _: None)
    assert up is False
    assert probes == [0.0, 0.5, 1.0, 1.5]


def test_a_pds_already_up_is_not_waited_for() -> None:
    clock = FakeClock()
    stop = ManualStop(clock)
    assert health.wait_for_pds(lambda: True, stop, url="http://x/", clock=clock, report=print)
    assert stop.waits == []


def test_pds_answers_is_false_when_nothing_listens() -> None:
    assert health.pds_answers("http://127.0.0.1:9/xrpc/_health") is False


def _health(tmp_path: Path, marker: dict[str, object]) -> int:
    settings = settings_from_env({**BASE_ENV, "BACKUP_STATE_DIRECTORY": str(tmp_path)})
    (tmp_path / health.HEALTH_FILE).write_text(json.dumps(marker))
    return health.health(settings, argparse.Namespace())


def test_healthy_while_waiting_for_the_pds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _health(tmp_path, {"pid": os.getpid(), "litestream_pid": None, "generation": "g"}) == 0
    assert "waiting for the PDS" in capsys.readouterr().out


def test_unhealthy_once_litestream_started_and_died(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: never a live process
    assert _health(tmp_path, {"pid": os.getpid(), "litestream_pid": dead}) == 1
    assert _health(tmp_path, {"pid": dead, "litestream_pid": None}) == 1
    assert _health(tmp_path, {"pid": os.getpid(), "litestream_pid": os.getpid()}) == 0
