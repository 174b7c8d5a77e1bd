"""Pure parts of status (backup lag, durations, TIDs) and of drills and restores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pds_aws.backup.generations import undo_generation
from pds_aws.ops import backup_commands, ecs, status
from pds_aws.ops.status import Status

DID_A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
DID_B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(moment: datetime) -> str:
    number = int(moment.timestamp() * 1_000_000) << 10
    chars = []
    for _ in range(13):
        chars.append(_ALPHABET[number % 32])
        number //= 32
    return "".join(reversed(chars))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


T0 = datetime(2026, 11, 29, 21, 0, 0, tzinfo=UTC)


def test_tid_time_of_a_real_rev() -> None:
    # A post the local PDS created at 20:43:47 UTC.
    assert status.tid_time("3n3i3gt55us2y") == datetime(2026, 11, 29, 20, 43, 47, 207000, UTC)
    assert status.tid_time(tid(T0)) == T0
    with pytest.raises(ValueError, match="not a TID"):
        status.tid_time("not-a-tid")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert status.parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="examples: 90s"):
        status.parse_duration("soon")


def _db(did: str) -> str:
    return f"actors/aa/{did}/store.sqlite"


def test_backup_lag_ignores_idle_accounts_and_measures_the_worst() -> None:
    repos = [
        {"did": DID_A, "rev": tid(T0 - timedelta(days=30))},  # idle for a month, backed up
        {"did": DID_B, "rev": tid(T0)},  # just committed
    ]
    databases = {
        "account.sqlite": iso(T0),
        _db(DID_A): iso(T0 - timedelta(days=30)),
        _db(DID_B): iso(T0 - timedelta(seconds=40)),
    }
    lag = status.backup_lag(repos, databases)
    assert lag.seconds == pytest.approx(40)
    assert lag.worst_account == DID_B
    assert lag.missing == ()


def test_backup_lag_names_accounts_missing_from_the_backup() -> None:
    lag = status.backup_lag([{"did": DID_A, "rev": tid(T0)}], {"account.sqlite": iso(T0)})
    assert lag.missing == (DID_A,)


def test_judge() -> None:
    ok = Status(url="u", version="1", accounts=1, backup={"current_generation": "g"})
    ok.lag = status.BackupLag(10, DID_A)
    assert status.judge(ok, max_backup_age=60, now=T0) == []
    ok.lag = status.BackupLag(600, DID_A)
    (problem,) = status.judge(ok, max_backup_age=60, now=T0)
    assert "10 min behind" in problem and DID_A in problem
    empty = Status(url="u", version="1", backup={"current_generation": None})
    assert status.judge(empty, 60, T0) == ["no backup exists yet (no current generation)"]
    down = Status(url="u", health_error="unreachable", backup_error="exit 1")
    assert len(status.judge(down, 60, T0)) == 2


def test_restore_command_and_generation_choice() -> None:
    assert backup_commands.restore_command("2026-11-29T21:00:00Z", None) == [
        "pds-aws-backup",
        "restore-at",
        "2026-11-29T21:00:00Z",
    ]
    assert backup_commands.restore_command("latest", "g1")[-2:] == ["--generation", "g1"]
    # Newest first: a task start after a restore, the restore, the history before it.
    chain = [
        {"generation": "g3", "reason": "task start", "source": "g2"},
        {"generation": "g2", "reason": "restore-at", "source": "g1", "previous": "g1b"},
        {"generation": "g1", "reason": "first boot", "source": None},
    ]
    assert undo_generation(chain) == "g1b"
    assert undo_generation(chain[2:]) is None


def test_restore_steps_say_what_happens_and_that_history_stays() -> None:
    local = " ".join(
        backup_commands.restore_steps("local", "2026-11-29T21:00:00Z", None, local=True)
    )
    assert "stop the local runtime" in local and "restore-at 2026-11-29T21:00:00Z" in local
    assert "Nothing is deleted" in local
    remote = " ".join(backup_commands.restore_steps("MyPds", "latest", "g1", local=False))
    assert "scale the ECS service of MyPds to 0" in remote and "--generation g1" in remote


def test_last_summary_line() -> None:
    assert backup_commands.last_summary(["log line", '{"ok": true}', "{broken"]) == {"ok": True}
    assert backup_commands.last_summary(["no json here"]) is None


TASK_DEFINITION = {
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:1:task-definition/pds-task:7",
    "taskRoleArn": "arn:aws:iam::1:role/task",
    "containerDefinitions": [
        {
            "name": "backup",
            "command": ["pds-aws-backup", "run"],
            "environment": [{"name": "BACKUP_URL", "value": "s3://b/pds"}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/g/backup", "awslogs-stream-prefix": "backup"},
            },
        },
        {"name": "pds"},
    ],
}


def test_container_facts_and_log_streams() -> None:
    facts = ecs.container_facts(TASK_DEFINITION)
    assert facts.task_role_arn == "arn:aws:iam::1:role/task"
    backup_container = facts.containers["backup"]
    assert backup_container.environment == {"BACKUP_URL": "s3://b/pds"}
    task_arn = "arn:aws:ecs:eu-west-1:1:task/cluster/0123abcd"
    assert backup_container.log_stream(task_arn) == "backup/backup/0123abcd"
    assert facts.containers["pds"].log_stream(task_arn) is None


def test_drill_task_definition_is_the_other_one() -> None:
    service = "arn:aws:ecs:r:1:task-definition/pds-task:7"
    drill = "arn:aws:ecs:r:1:task-definition/pds-drill:3"
    resources = [
        {"ResourceType": "AWS::ECS::TaskDefinition", "PhysicalResourceId": service},
        {"ResourceType": "AWS::ECS::TaskDefinition", "PhysicalResourceId": drill},
        {"ResourceType": "AWS::ECS::Service", "PhysicalResourceId": "svc"},
    ]
    assert ecs.drill_task_definition(resources, service) == drill
    with pytest.raises(ecs.StackOperationError, match="found 0"):
        ecs.drill_task_definition(resources[:1], service)


def test_run_task_request_overrides_command_and_role() -> None:
    network = {"awsvpcConfiguration": {"subnets": ["s1"], "assignPublicIp": "ENABLED"}}
    request = ecs.run_task_request(
        cluster="c",
        task_definition="td",
        network_configuration=network,
        container="drill",
        command=["pds-aws-backup", "restore-at", "latest"],
        task_role_arn="arn:role",
    )
    assert request["networkConfiguration"] == network
    assert request["overrides"] == {
        "containerOverrides": [
            {"name": "drill", "command": ["pds-aws-backup", "restore-at", "latest"]}
        ],
        "taskRoleArn": "arn:role",
    }
    plain = ecs.run_task_request(
        cluster="c", task_definition="td", network_configuration=network, container="drill"
    )
    assert "overrides" not in plain


def test_container_exit() -> None:
    task = {"containers": [{"name": "drill", "exitCode": 1}], "stoppedReason": "Essential exited"}
    assert ecs.container_exit(task, "drill") == (1, "Essential exited")
    assert ecs.container_exit(task, "other")[0] is None
