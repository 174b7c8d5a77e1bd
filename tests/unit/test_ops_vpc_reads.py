"""Operator reads of prod backups run inside the VPC, as a one-off task of the drill definition.

The prod backup bucket denies object reads that do not come through the VPC's S3 gateway
endpoint (`aws:SourceVpce`, AWS docs: "Controlling access from VPC endpoints with bucket
policies", https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html),
so `pds-aws status` and `backup restore --at latest` cannot read it from an operator's machine.
Neither moto nor the local emulator evaluates that condition, so no local run can show the
denial: this tests the command path (which command runs where, how its answer and its failure
come back); the template side is in tests/template/test_ops_vpc_reads_template.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pds_aws.errors import OperationError, PdsAwsError
from pds_aws.names import DRILL_CONTAINER
from pds_aws.ops import backup_commands as commands
from pds_aws.ops.ecs import TaskDefinitionFacts
from pds_aws.ops.target import Target

AWS_TARGET = Target(name="BlueskyPds", url="https://pds.example.com", admin_password="x")


class OneOffTasks:
    """Records the one-off tasks a command runs and answers with a task's log lines."""

    def __init__(self, code: int | None, lines: list[str]) -> None:
        self.code, self.lines = code, lines
        self.runs: list[tuple[str, str, list[str] | None, str | None]] = []

    def drill_task(self) -> TaskDefinitionFacts:
        return TaskDefinitionFacts(arn="arn:drill:1", task_role_arn="arn:role/drill", containers={})

    def run_one_off(
        self,
        task: TaskDefinitionFacts,
        container: str,
        command: list[str] | None,
        progress: Any,
        *,
        task_role_arn: str | None = None,
    ) -> tuple[int | None, list[str]]:
        self.runs.append((task.arn, container, command, task_role_arn))
        return self.code, self.lines


def use(monkeypatch: pytest.MonkeyPatch, tasks: OneOffTasks) -> None:
    monkeypatch.setattr(commands, "stack_of", lambda _target: tasks)


def test_status_reads_the_backup_in_a_drill_task(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = {"current_generation": "g2", "undo_generation": "g1", "databases": {}}
    tasks = OneOffTasks(0, ["INFO backup: listing", json.dumps(answer)])
    use(monkeypatch, tasks)
    assert commands.backup_status_of(AWS_TARGET) == answer
    # The drill definition, its own read-only role (no override), the backup program's status.
    assert tasks.runs == [("arn:drill:1", DRILL_CONTAINER, ["pds-aws-backup", "status"], None)]


def test_a_failed_read_in_the_vpc_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, OneOffTasks(1, ["ERROR backup: status: AccessDenied on pds/CURRENT"]))
    with pytest.raises(OperationError, match="exited 1: ERROR backup: status: AccessDenied"):
        commands.backup_status_of(AWS_TARGET)
    # The CLI prints PdsAwsError in one line (ops/common.py `guarded`), no traceback.
    assert issubclass(OperationError, PdsAwsError)


def test_restore_at_latest_finds_its_generation_in_the_vpc(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = OneOffTasks(0, [json.dumps({"current_generation": "g2", "undo_generation": "g1"})])
    use(monkeypatch, tasks)
    monkeypatch.setattr(commands, "target_of", lambda _args: AWS_TARGET)
    monkeypatch.setattr("pds_aws.ops.output.confirm", lambda *_args: False)  # stop at the ask
    args = type("Args", (), {"at": "latest", "generation": None, "yes": False})()
    assert commands._restore(args) == 1
    assert tasks.runs[0][2] == ["pds-aws-backup", "status"]
    assert "generation g1" in capsys.readouterr().out
