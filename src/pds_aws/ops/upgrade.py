"""`pds-aws upgrade --to TAG`: move the PDS to another image tag, and back when it fails.

The steps (guides/OPERATIONS.md, "Upgrading the PDS"): show both versions (warn on a minor-version
jump); run a restore drill; deploy the new tag and wait until stable; record the restore point
(the old task's final sync, marked by its release of the backup lease); run smoke and the
doctor's HTTP, firehose and backup checks. On failure: stop the new version, compare the
databases' migration tables at the restore point and now; unchanged, the old version takes them
as they are (nothing lost); changed, going back means restoring to the restore point: say exactly
which writes that drops, ask, restore, then start the old version.

Where it runs is a `Deployment` (pds_aws.ops.upgrade_local, pds_aws.ops.upgrade_aws); the flow
here is the same for both.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from pds_aws.errors import OperationError
from pds_aws.ops.upgrade_data import (
    DroppedWrites,
    RestorePoint,
    dropped_writes,
    migrations_of,
    restore_scratch,
    schema_changes,
)
from pds_aws.versions import UNVERIFIED_TAGS, UnknownImageTag, minor_jump, pds_version_of

if TYPE_CHECKING:
    from pds_aws.ops.target import Target

_T = TypeVar("_T")
Say = Callable[[str, str], None]  # (step, message)
Confirm = Callable[[str], bool]


class UpgradeError(OperationError):
    """The upgrade cannot start, or a step failed; the message says which and what to do."""


@dataclass(frozen=True)
class UpgradePlan:
    current_tag: str
    current_version: str
    target_tag: str
    target_version: str

    @property
    def minor_jump(self) -> bool:
        return minor_jump(self.current_version, self.target_version)

    def lines(self) -> list[str]:
        lines = [
            f"current: image {self.current_tag} = @atproto/pds {self.current_version}",
            f"target:  image {self.target_tag} = @atproto/pds {self.target_version}",
        ]
        if self.minor_jump:
            lines.append(
                f"WARNING: a minor-version jump ({self.current_version} -> "
                f"{self.target_version}): read the release notes; its migrations may not be "
                "undone without restoring the backup"
            )
        if self.target_tag in UNVERIFIED_TAGS:
            lines.append(
                f"WARNING: that image {self.target_tag} carries @atproto/pds "
                f"{self.target_version} is inferred, not verified (src/pds_aws/versions.py)"
            )
        return lines


def plan_upgrade(current_tag: str, target_tag: str, known: Mapping[str, str]) -> UpgradePlan:
    """Both tags checked against the version table (`known`: tag -> @atproto/pds version)."""
    if target_tag == current_tag:
        raise UpgradeError(f"image {target_tag} is already deployed: nothing to upgrade")
    try:
        current = known.get(current_tag) or pds_version_of(current_tag)
        target = known.get(target_tag) or pds_version_of(target_tag)
    except UnknownImageTag as exc:
        raise UpgradeError(f"--to: {exc}") from None
    return UpgradePlan(current_tag, current, target_tag, target)


@dataclass(frozen=True)
class Deployed:
    """What a deploy came to: stable on the new tag or not, and the restore point."""

    stable: bool
    detail: str
    point: RestorePoint | None


class Deployment(Protocol):
    """One PDS service as the upgrade drives it (the local runtime or the ECS service)."""

    name: str

    def current_tag(self) -> str: ...
    def problems(self, target_tag: str) -> list[str]: ...
    def drill(self, say: Say) -> None: ...
    def deploy(self, tag: str, say: Say) -> Deployed: ...
    def url(self) -> str: ...
    def target(self) -> Target: ...
    def backup_env(self) -> dict[str, str]: ...
    def stop(self, say: Say) -> None: ...
    def with_backup(self, work: Callable[[dict[str, str]], _T], say: Say) -> _T: ...
    def restore_to(self, point: RestorePoint, say: Say) -> None: ...
    def start(self, tag: str, say: Say) -> None: ...


class Outcome(StrEnum):
    UPGRADED = "upgraded"
    ROLLED_BACK = "rolled back, nothing lost"
    RESTORED = "rolled back and restored to the restore point"
    NOT_CONFIRMED = "failed; the rollback's restore was not confirmed"


@dataclass(frozen=True)
class UpgradeResult:
    outcome: Outcome
    plan: UpgradePlan
    point: RestorePoint | None
    failures: tuple[str, ...] = ()
    schema_changes: tuple[str, ...] = ()
    dropped: DroppedWrites | None = None


# -- checks after the deploy -----------------------------------------------------------------


def check_service(target: Target, backup_env: Mapping[str, str], say: Say) -> list[str]:
    """`pds-aws smoke` without an account, then the doctor's checks an upgrade can break
    (HTTP routes, firehose, backup freshness). Returns the failures."""
    from pds_aws.doctor.checks import Doctor, check_backup, check_firehose, check_http
    from pds_aws.doctor.report import Outcome as DoctorOutcome
    from pds_aws.ops.smoke import probe_with_key, run_checks
    from pds_aws.ops.status import read_backup_status

    failures: list[str] = []
    for result in run_checks(probe_with_key(target.url, target.rate_limit_bypass_key)):
        say("smoke", result.line())
        if not result.passed:
            failures.append(f"smoke {result.name}: {result.detail}")
    doctor = Doctor(
        target=target,
        domain="",
        hosted_zone="",
        region="",
        relays=(),
        backup_status=lambda: read_backup_status(backup_env),
    )
    for check in (*check_http(doctor), *check_firehose(doctor), *check_backup(doctor, 300.0)):
        say(
            "doctor", f"{check.outcome.value.upper():<7} {check.group} {check.name}: {check.detail}"
        )
        if check.outcome is DoctorOutcome.FAIL:
            failures.append(f"doctor {check.group} {check.name}: {check.detail}")
    return failures


# -- the flow --------------------------------------------------------------------------------


def run_upgrade(
    deployment: Deployment,
    target_tag: str,
    *,
    confirm: Confirm,
    say: Say,
    known: Mapping[str, str] | None = None,
    check: Callable[[Target, Mapping[str, str], Say], list[str]] = check_service,
) -> UpgradeResult:
    """The whole upgrade; every step is announced through `say` before it acts."""
    plan = plan_upgrade(deployment.current_tag(), target_tag, known or {})
    problems = deployment.problems(target_tag)
    if problems:
        raise UpgradeError("cannot upgrade:\n  - " + "\n  - ".join(problems))
    for line in plan.lines():
        say("versions", line)

    say("drill", "restore drill: the latest backup restored into scratch space and checked")
    deployment.drill(say)

    say("deploy", f"deploying image {target_tag} to {deployment.name}")
    deployed = deployment.deploy(target_tag, say)
    point = deployed.point
    if point is not None:
        how = "final sync" if point.released else "last renewal; it did NOT release (crashed?)"
        say("restore point", f"{point.at.isoformat()} (the old task's {how}, {point.holder})")
    else:
        say("restore point", "not found: the old task's lease release was not seen")
    if deployed.stable:
        say("stable", f"image {target_tag} is running: {deployed.detail}")
        failures = check(deployment.target(), deployment.backup_env(), say)
    else:
        say("stable", f"image {target_tag} did not become stable: {deployed.detail}")
        failures = [f"deploy: {deployed.detail}"]
    if not failures:
        say("done", f"upgraded {deployment.name} to image {target_tag}")
        return UpgradeResult(Outcome.UPGRADED, plan, point)
    for failure in failures:
        say("failed", failure)
    return roll_back(deployment, plan, point, tuple(failures), confirm=confirm, say=say)


def _compare(env: dict[str, str], point: RestorePoint) -> tuple[list[str], DroppedWrites]:
    scratch = Path(tempfile.mkdtemp(prefix="pds-aws-upgrade-"))
    try:
        at_point, latest = scratch / "at-point", scratch / "latest"
        restore_scratch(env, at_point, point.at)
        restore_scratch(env, latest, None)
        changes = schema_changes(migrations_of(at_point), migrations_of(latest))
        return changes, dropped_writes(at_point, latest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def roll_back(
    deployment: Deployment,
    plan: UpgradePlan,
    point: RestorePoint | None,
    failures: tuple[str, ...],
    *,
    confirm: Confirm,
    say: Say,
) -> UpgradeResult:
    old = plan.current_tag
    say("rollback", f"stopping {deployment.name} (its backup sidecar makes its final sync)")
    deployment.stop(say)
    if point is None:
        raise UpgradeError(
            f"the upgrade failed and no restore point is known, so the schema cannot be compared; "
            f"{deployment.name} is stopped. Check the backup (`pds-aws status`), then start image "
            f"{old} (`pds-aws upgrade --to {old}`) or restore (`pds-aws backup restore --at`)"
        )
    say("rollback", "comparing the databases' migrations at the restore point and now")
    changes, dropped = deployment.with_backup(lambda env: _compare(env, point), say)
    if not changes:
        say("rollback", "the schema is unchanged: the old version takes the databases as they are")
        deployment.start(old, say)
        say("done", f"rolled back to image {old}; nothing is lost ({dropped.count} writes kept)")
        return UpgradeResult(Outcome.ROLLED_BACK, plan, point, failures, (), dropped)
    for change in changes:
        say("rollback", f"schema changed: {change}")
    say(
        "rollback",
        f"image {old} cannot run on the migrated databases: going back restores the backup to "
        f"the restore point {point.at.isoformat()}, which drops {dropped.describe()}",
    )
    if not confirm(f"Restore to {point.at.isoformat()} and drop {dropped.count} writes?"):
        say("rollback", f"not confirmed: nothing restored; starting image {plan.target_tag} again")
        deployment.start(plan.target_tag, say)
        return UpgradeResult(Outcome.NOT_CONFIRMED, plan, point, failures, tuple(changes), dropped)
    deployment.restore_to(point, say)
    deployment.start(old, say)
    say("done", f"rolled back to image {old}, restored to {point.at.isoformat()}")
    return UpgradeResult(Outcome.RESTORED, plan, point, failures, tuple(changes), dropped)
