"""Operator commands fail closed: bad restore arguments stop nothing, a failed scale-down
leaves the service as it was, and only our own processes are ever signalled."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from pds_aws.ops import backup_commands, ecs
from pds_aws.procs import is_our_process

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_restore_arguments_are_checked_before_anything_stops() -> None:
    problem = backup_commands.restore_args_problem
    assert problem("2026-11-30T10:00:00Z", None, NOW) is None
    assert problem("latest", "20261129T201500Z-1a2b", NOW) is None
    assert "RFC 3339" in (problem("yesterday", None, NOW) or "")
    assert "in the future" in (problem("2026-12-01T00:00:00Z", None, NOW) or "")
    assert "not a generation id" in (problem("latest", "../other", NOW) or "")


class FakeEcs:
    """ECS that never reaches the asked count (tasks that do not stop)."""

    def __init__(self) -> None:
        self.desired = 1
        self.updates: list[int] = []

    def describe_services(self, **kwargs: Any) -> dict[str, Any]:
        return {"services": [{"desiredCount": self.desired, "runningCount": 1}]}

    def update_service(self, **kwargs: Any) -> None:
        self.desired = int(kwargs["desiredCount"])
        self.updates.append(self.desired)


class FakeSession:
    def __init__(self, client: FakeEcs) -> None:
        self._client = client

    def client(self, name: str) -> FakeEcs:
        assert name == "ecs"
        return self._client


def test_a_failed_scale_down_leaves_the_service_as_it_was() -> None:
    client = FakeEcs()
    resources = type("R", (), {"cluster": "c", "service": "s"})()
    stack = ecs.Stack(FakeSession(client), resources, {}, None)  # type: ignore[arg-type]
    with pytest.raises(ecs.StackOperationError, match="back at 1, as it was"):
        stack.scale(0, lambda _: None, wait_s=0.0, poll_s=0.0)
    assert client.updates == [0, 1] and client.desired == 1


def test_only_processes_whose_command_line_is_ours_are_ours() -> None:
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Once it prints, it has exec'd: before that its command line is still pytest's.
        assert stranger.stdout is not None and stranger.stdout.readline() == "up\n"
        assert not is_our_process(stranger.pid)  # e.g. a pid reused since the state was written
        assert is_our_process(stranger.pid, ("time.sleep",))
    finally:
        stranger.kill()
        stranger.wait()
    assert not is_our_process(stranger.pid, ("time.sleep",))  # gone
