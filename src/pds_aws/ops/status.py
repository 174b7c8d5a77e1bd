"""`pds-aws status`: health and version, accounts, and how far the backup is behind the PDS.

Backup freshness comes from the backup program itself (`pds-aws-backup status`: per database
the newest replicated change). An idle account's database has an old newest change without
anything being wrong, so the age compared with `--max-backup-age` is the backup's lag: for each
account, how much older the newest backed-up change of its repository database is than the
repository's latest commit (its `rev`, a timestamp identifier) on the live PDS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pds_aws.backup.layout import ACCOUNT_STORE, classify
from pds_aws.errors import OperationError
from pds_aws.relay.facts import tid_time

BACKUP_STATUS_TIMEOUT_S = 120.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """Seconds from '90', '90s', '15m', '2h' or '1d'."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration; examples: 90s, 15m, 2h, 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def human_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True)
class BackupLag:
    """How far the backup is behind the live repositories."""

    seconds: float  # the worst account's lag; 0 when every latest commit is backed up
    worst_account: str | None
    missing: tuple[str, ...] = ()  # accounts with no repository database in the backup


def backup_lag(
    repos: Sequence[Mapping[str, Any]], databases: Mapping[str, str | None]
) -> BackupLag:
    """Per account: latest commit time minus its database's newest backed-up change."""
    newest_by_did: dict[str, datetime | None] = {}
    for rel, newest in databases.items():
        pds_file = classify(rel)
        if pds_file and pds_file.did and rel.endswith("/" + ACCOUNT_STORE):
            newest_by_did[pds_file.did] = parse_time(newest) if newest else None
    worst, worst_did, missing = 0.0, None, []
    for repo in repos:
        did = str(repo["did"])
        if did not in newest_by_did:
            missing.append(did)
            continue
        try:
            committed = tid_time(str(repo.get("rev", "")))
        except ValueError:
            continue
        backed_up = newest_by_did[did]
        lag = (committed - backed_up).total_seconds() if backed_up else float("inf")
        if lag > worst:
            worst, worst_did = lag, did
    return BackupLag(worst, worst_did, tuple(missing))


@dataclass
class Status:
    url: str
    version: str | None = None
    health_error: str | None = None
    accounts: int | None = None
    backup: dict[str, Any] | None = None
    backup_error: str | None = None
    lag: BackupLag | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "version": self.version,
            "accounts": self.accounts,
            "backup": self.backup,
            "backup_lag_seconds": self.lag.seconds if self.lag else None,
            "accounts_missing_from_backup": list(self.lag.missing) if self.lag else [],
            "problems": self.problems,
            "ok": not self.problems,
        }


def judge(status: Status, max_backup_age: float, now: datetime) -> list[str]:
    """The problems that make `status` exit non-zero."""
    problems = []
    if status.health_error:
        problems.append(f"PDS not healthy: {status.health_error}")
    if status.backup_error:
        problems.append(f"backup status unavailable: {status.backup_error}")
    elif status.backup is not None and not status.backup.get("current_generation"):
        problems.append("no backup exists yet (no current generation)")
    if status.lag:
        if status.lag.missing:
            problems.append(
                f"{len(status.lag.missing)} account(s) have no database in the backup, "
                f"e.g. {status.lag.missing[0]}"
            )
        if status.lag.seconds > max_backup_age:
            problems.append(
                f"backup is {human_age(status.lag.seconds)} behind account "
                f"{status.lag.worst_account} (limit {human_age(max_backup_age)})"
            )
    return problems


def report_lines(status: Status, now: datetime) -> list[str]:
    lines = [f"PDS        {status.url}"]
    if status.health_error:
        lines.append(f"health     FAILED: {status.health_error}")
    else:
        lines.append(f"health     ok, version {status.version}")
    lines.append(f"accounts   {status.accounts if status.accounts is not None else '?'}")
    backup = status.backup
    if backup is None:
        lines.append(f"backup     unavailable: {status.backup_error}")
    else:
        lines.append(
            f"backup     {backup.get('backup_url')} generation {backup.get('current_generation')}"
        )
        databases: Mapping[str, str | None] = backup.get("databases") or {}
        for rel, newest in databases.items():
            age = human_age((now - parse_time(newest)).total_seconds()) if newest else "never"
            lines.append(f"  {rel:<70} {newest or '-':<28} {age} ago")
        oldest = backup.get("oldest_change")
        if oldest:
            age = human_age((now - parse_time(oldest)).total_seconds())
            lines.append(f"oldest newest-change: {oldest} ({age} ago; idle databases are old)")
        if status.lag is not None:
            lines.append(f"backup lag {human_age(status.lag.seconds)} behind the live repositories")
    lines += [f"PROBLEM    {p}" for p in status.problems]
    lines.append("status     " + ("ok" if not status.problems else "NOT OK"))
    return lines


def read_backup_status(
    backup_env: Mapping[str, str], timeout: float = BACKUP_STATUS_TIMEOUT_S
) -> dict[str, Any]:
    """Run the backup program's `status` against the target's backups and parse its JSON."""
    if not backup_env.get("BACKUP_URL"):
        raise OperationError("the target does not name its backup location (BACKUP_URL)")
    # The user's own environment carries their AWS profile and credentials; the target's
    # settings (backup URL, region, emulator endpoint) go on top.
    env = {**os.environ, **backup_env}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pds_aws.backup", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(f"pds-aws-backup status did not answer in {timeout:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperationError(f"pds-aws-backup status exited {result.returncode}: {tail}")
    lines = result.stdout.strip().splitlines()
    try:
        value = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise OperationError("pds-aws-backup status printed no JSON object")
    return value
