"""`pds-aws upgrade`: the version plan, the restore point, schema and dropped writes, ECS's
rollout as the upgrade reads it, and the flow's branches on a recorded deployment."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pds_aws.ops.target import Target
from pds_aws.ops.upgrade import Deployed, Outcome, UpgradeError, plan_upgrade, run_upgrade
from pds_aws.ops.upgrade_aws import (
    IMAGE_TAG_LABEL,
    Rollout,
    image_tag_of,
    judge_rollout,
    service_problems,
    task_definition_for,
)
from pds_aws.ops.upgrade_data import (
    DroppedWrites,
    RestorePoint,
    dropped_writes,
    migrations_of,
    restore_point_from,
    schema_changes,
)
from pds_aws.versions import PDS_PACKAGE_IN_IMAGE

_T = TypeVar("_T")
T0 = "2026-11-30T12:00:00.000000Z"


# -- plan ------------------------------------------------------------------------------------


def test_plan_shows_both_versions_and_warns_on_a_minor_jump() -> None:
    plan = plan_upgrade("0.4.5026", "0.4.5035", {})
    assert (plan.current_version, plan.target_version, plan.minor_jump) == (
        "0.5.26",
        "0.5.35",
        False,
    )
    assert not any("minor-version jump" in line for line in plan.lines())
    assert any("inferred, not verified" in line for line in plan.lines())  # 0.4.5035
    jump = plan_upgrade("0.4.219", "0.4.5026", {"0.4.219": "0.4.219"})
    assert jump.minor_jump
    assert any("minor-version jump (0.4.219 -> 0.5.26)" in line for line in jump.lines())


def test_plan_refuses_unknown_and_unchanged_tags() -> None:
    with pytest.raises(UpgradeError, match=r"--to: image tag '0\.4\.9999' is not in the version"):
        plan_upgrade("0.4.5026", "0.4.9999", {})
    with pytest.raises(UpgradeError, match="already deployed"):
        plan_upgrade("0.4.5026", "0.4.5026", {})
    assert "0.4.5026" in PDS_PACKAGE_IN_IMAGE


# -- restore point, schema, dropped writes ------------------------------------------------------


def _lease(holder: str, released: bool, previous: dict[str, object] | None = None) -> bytes:
    body: dict[str, object] = {"holder": holder, "renewed": T0, "released": released}
    if previous is not None:
        body["previous"] = previous
    return json.dumps(body).encode()


def test_restore_point_is_the_old_holders_release() -> None:
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    # The old task released it and nobody took it yet.
    assert restore_point_from(_lease("old", True), "old") == RestorePoint(at, "old", True)
    # Still held (final sync not over): no point yet.
    assert restore_point_from(_lease("old", False), "old") is None
    # The new task took it over and recorded the release.
    taken = _lease("new", False, {"holder": "old", "released": True, "at": T0})
    assert restore_point_from(taken, "old") == RestorePoint(at, "old", True)
    # Taken over after it expired: a point, marked as not released (no final sync).
    expired = _lease("new", False, {"holder": "old", "released": False, "at": T0})
    point = restore_point_from(expired, "old")
    assert point is not None and not point.released
    # Someone else's record, or nothing at all.
    assert restore_point_from(_lease("new", False, {"holder": "x", "at": T0}), "old") is None
    assert restore_point_from(None, "old") is None and restore_point_from(taken, None) is None


def _db(path: Path, migrations: list[str], events: list[tuple[str, str, str]] = ()) -> None:  # type: ignore[assignment]
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE kysely_migration (name TEXT PRIMARY KEY, timestamp TEXT)")
        db.executemany("INSERT INTO kysely_migration VALUES (?, '')", [(m,) for m in migrations])
        if path.name == "sequencer.sqlite":
            db.execute(
                "CREATE TABLE repo_seq (seq INTEGER PRIMARY KEY AUTOINCREMENT, did TEXT, "
                '"eventType" TEXT, event BLOB, invalidated INT DEFAULT 0, "sequencedAt" TEXT)'
            )
            db.executemany(
                'INSERT INTO repo_seq (did, "eventType", event, "sequencedAt") VALUES (?, ?, x\'\', ?)',
                events,
            )
        db.commit()


def test_schema_changes_name_the_migrations_applied(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    store = "actors/ab/did:plc:a/store.sqlite"
    _db(before / "account.sqlite", ["001", "002"])
    _db(before / store, ["001"])
    _db(after / "account.sqlite", ["001", "002", "003"])
    _db(after / store, ["001"])
    _db(after / "actors/cd/did:plc:b/store.sqlite", ["001"])  # a new account: not a change
    changes = schema_changes(migrations_of(before), migrations_of(after))
    assert changes == ["account.sqlite: migration 003 applied"]
    assert schema_changes(migrations_of(before), migrations_of(before)) == []


def test_dropped_writes_are_the_sequencer_events_after_the_point(tmp_path: Path) -> None:
    old = [("did:a", "append", "2026-11-30T11:00:00.000Z")]
    new = [
        ("did:a", "append", "2026-11-30T12:00:01.000Z"),
        ("did:b", "identity", "2026-11-30T12:00:02.000Z"),
        ("did:b", "append", "2026-11-30T12:00:03.000Z"),
    ]
    _db(tmp_path / "point" / "sequencer.sqlite", ["001"], old)
    _db(tmp_path / "latest" / "sequencer.sqlite", ["001"], old + new)
    dropped = dropped_writes(tmp_path / "point", tmp_path / "latest")
    assert dropped == DroppedWrites(
        3, new[0][2], new[2][2], {"append": 2, "identity": 1}, accounts=2
    )
    assert "3 writes (2 append, 1 identity) of 2 account(s)" in dropped.describe()
    none = dropped_writes(tmp_path / "latest", tmp_path / "latest")
    assert none.count == 0 and "nothing is dropped" in none.describe()


# -- ECS -------------------------------------------------------------------------------------


def _service(*deployments: dict[str, Any], rollback: bool = True) -> dict[str, Any]:
    return {
        "serviceName": "pds",
        "desiredCount": 1,
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": rollback}
        },
        "deployments": list(deployments),
    }


def test_rollout_waits_for_ecs_own_rollback_to_finish() -> None:
    """ECS API reference, DeploymentCircuitBreaker: "If rollback is on, when a service
    deployment fails, the service is rolled back to the last deployment that completed
    successfully". The upgrade acts only once ECS is done: COMPLETED, or ECS's rollback
    deployment COMPLETED and ours gone; while either runs it waits, so the two never race."""
    ours = {"id": "ecs-svc/new", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}
    assert judge_rollout(_service(ours), "ecs-svc/new") is Rollout.IN_PROGRESS
    done = {**ours, "rolloutState": "COMPLETED"}
    assert judge_rollout(_service(done), "ecs-svc/new") is Rollout.COMPLETED
    failed = {**ours, "rolloutState": "FAILED"}
    assert judge_rollout(_service(failed), "ecs-svc/new") is Rollout.ROLLING_BACK
    assert judge_rollout(_service(failed, rollback=False), "ecs-svc/new") is Rollout.FAILED
    back = {"id": "ecs-svc/back", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}
    draining = {**failed, "status": "ACTIVE"}
    assert judge_rollout(_service(back, draining), "ecs-svc/new") is Rollout.ROLLING_BACK
    back_done = {**back, "rolloutState": "COMPLETED"}
    assert judge_rollout(_service(back_done, draining), "ecs-svc/new") is Rollout.ROLLING_BACK
    assert judge_rollout(_service(back_done), "ecs-svc/new") is Rollout.ROLLED_BACK


def test_service_must_be_idle_with_a_circuit_breaker() -> None:
    idle = _service({"id": "a", "status": "PRIMARY", "rolloutState": "COMPLETED"})
    assert service_problems(idle) == []
    busy = _service(
        {"id": "b", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
        {"id": "a", "status": "ACTIVE", "rolloutState": "COMPLETED"},
    )
    assert any("middle of a deployment" in p for p in service_problems(busy))
    bare = {**idle, "deploymentConfiguration": {}, "desiredCount": 0}
    problems = service_problems(bare)
    assert any("no deployment circuit breaker" in p for p in problems)
    assert any("desired count 0" in p for p in problems)


def test_new_revision_changes_only_the_pds_image_and_labels_it() -> None:
    described = {
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:1:task-definition/pds:7",
        "revision": 7,
        "status": "ACTIVE",
        "family": "pds",
        "taskRoleArn": "role",
        "cpu": "512",
        "memory": "1024",
        "containerDefinitions": [
            {
                "name": "pds",
                "image": "1.dkr.ecr/pds:abc",
                "environment": [{"name": "A", "value": "1"}],
            },
            {"name": "backup", "image": "1.dkr.ecr/backup:def"},
        ],
    }
    request = task_definition_for(described, "0.4.5035")
    assert "taskDefinitionArn" not in request and "revision" not in request
    pds, backup = request["containerDefinitions"]
    assert pds["image"] == "ghcr.io/bluesky-social/pds:0.4.5035"
    assert pds["environment"] == [{"name": "A", "value": "1"}]
    assert backup == described["containerDefinitions"][1]
    assert image_tag_of(request) == "0.4.5035" and image_tag_of(described) is None
    assert pds["dockerLabels"] == {IMAGE_TAG_LABEL: "0.4.5035"}


# -- the flow --------------------------------------------------------------------------------

POINT = RestorePoint(datetime(2026, 11, 30, 12, tzinfo=UTC), "old", True)


@dataclass
class Recorded:
    """A deployment that records what the flow asks of it (no processes, no AWS)."""

    stable: bool = True
    changes: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    name: str = "recorded"

    def current_tag(self) -> str:
        return "0.4.5026"

    def problems(self, target_tag: str) -> list[str]:
        return []

    def drill(self, say: Callable[[str, str], None]) -> None:
        self.calls.append("drill")

    def deploy(self, tag: str, say: Callable[[str, str], None]) -> Deployed:
        self.calls.append(f"deploy {tag}")
        return Deployed(self.stable, "ok" if self.stable else "rolled back by ECS", POINT)

    def url(self) -> str:
        return "http://pds"

    def target(self) -> Target:
        return Target(name="recorded", url=self.url(), admin_password="")

    def backup_env(self) -> dict[str, str]:
        return {}

    def stop(self, say: Callable[[str, str], None]) -> None:
        self.calls.append("stop")

    def with_backup(
        self, work: Callable[[dict[str, str]], _T], say: Callable[[str, str], None]
    ) -> _T:
        self.calls.append("compare")
        return (self.changes, DroppedWrites(2, "a", "b", {"append": 2}, 1))  # type: ignore[return-value]

    def restore_to(self, point: RestorePoint, say: Callable[[str, str], None]) -> None:
        self.calls.append(f"restore {point.at:%H:%M}")

    def start(self, tag: str, say: Callable[[str, str], None]) -> None:
        self.calls.append(f"start {tag}")


def _run(dep: Recorded, failures: list[str], answer: bool = True) -> tuple[Any, list[str]]:
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    result = run_upgrade(
        dep,
        "0.4.5035",
        confirm=confirm,
        say=lambda step, message: None,
        check=lambda target, env, say: list(failures),
    )
    return result, asked


def test_flow_success_runs_drill_before_deploy_and_asks_nothing() -> None:
    dep = Recorded()
    result, asked = _run(dep, [])
    assert result.outcome is Outcome.UPGRADED and result.point == POINT
    assert dep.calls == ["drill", "deploy 0.4.5035"] and asked == []


def test_flow_failure_without_schema_change_starts_the_old_tag_on_the_data_as_is() -> None:
    dep = Recorded()
    result, asked = _run(dep, ["smoke describeServer: HTTP 500"])
    assert result.outcome is Outcome.ROLLED_BACK and asked == []
    assert dep.calls == ["drill", "deploy 0.4.5035", "stop", "compare", "start 0.4.5026"]


def test_flow_failure_with_schema_change_asks_then_restores_then_starts_the_old_tag() -> None:
    dep = Recorded(stable=False, changes=["account.sqlite: migration 999 applied"])
    result, asked = _run(dep, [])
    assert result.outcome is Outcome.RESTORED and result.failures == ("deploy: rolled back by ECS",)
    assert asked == ["Restore to 2026-11-30T12:00:00+00:00 and drop 2 writes?"]
    assert dep.calls[-3:] == ["compare", "restore 12:00", "start 0.4.5026"]


def test_flow_declined_restore_restarts_the_new_tag_and_restores_nothing() -> None:
    dep = Recorded(changes=["account.sqlite: migration 999 applied"])
    result, _ = _run(dep, ["smoke"], answer=False)
    assert result.outcome is Outcome.NOT_CONFIRMED
    assert not any(call.startswith("restore") for call in dep.calls)
    assert dep.calls[-1] == "start 0.4.5035"


def test_flow_validates_before_acting() -> None:
    dep = Recorded()
    dep.problems = lambda target_tag: ["the local runtime is not running"]  # type: ignore[method-assign]
    with pytest.raises(UpgradeError, match="not running"):
        _run(dep, [])
    assert dep.calls == []
