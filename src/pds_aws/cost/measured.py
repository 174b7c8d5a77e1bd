"""Figures the cost model takes from measurements: `measured.json`, written by the benchmarks.

benchmarks/backup_report.py writes the backup sidecar's idle S3 request rate there (with the
command and the machine that measured it) when it writes BENCHMARKS.md, so the model reads a
data file, never the prose. Without a measured figure the config's assumption is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pds_aws.config import CostSettings

MEASURED_FILE = "measured.json"
# The key of the idle backup figure in MEASURED_FILE.
BACKUP_IDLE_REQUESTS = "backup_idle_requests"
# The direct edge's failover parts (benchmarks/direct_failover.py), read by the cost guide.
DIRECT_FAILOVER = "direct_failover"


@dataclass(frozen=True)
class IdleMeasurement:
    """The backup sidecar's measured idle S3 requests per hour, and what it was measured on."""

    requests_per_hour: float
    accounts: int | None = None
    databases: int | None = None
    # The part of requests_per_hour that one task makes whatever its databases: the sidecar's
    # lease renewals on the backup prefix.
    per_task_per_hour: float = 0.0


@dataclass(frozen=True)
class MeasuredRate:
    requests_per_hour: float
    source: str  # where the figure comes from, shown beside it


def measured_path() -> Path:
    """The package's measured.json (committed; rewritten by `make benchmarks-backup`)."""
    return Path(str(resources.files("pds_aws.cost").joinpath(MEASURED_FILE)))


def idle_measurement(data: Mapping[str, Any]) -> IdleMeasurement | None:
    """The idle backup figure of parsed measured.json data, if recorded."""
    idle = data.get(BACKUP_IDLE_REQUESTS)
    if not isinstance(idle, Mapping) or idle.get("requests_per_hour") is None:
        return None
    accounts, databases = idle.get("accounts"), idle.get("databases")
    return IdleMeasurement(
        float(idle["requests_per_hour"]),
        int(accounts) if accounts else None,
        int(databases) if databases else None,
        float(idle.get("per_task_per_hour") or 0.0),
    )


def read_idle_measurement(path: Path | None = None) -> IdleMeasurement | None:
    """The idle backup figure in measured.json (the package's unless `path`), if recorded."""
    path = measured_path() if path is None else path
    if not path.is_file():
        return None
    return idle_measurement(json.loads(path.read_text(encoding="utf-8")))


def backup_idle_rate(settings: CostSettings, measured: IdleMeasurement | None) -> MeasuredRate:
    """The idle rate for the config's accounts: measured when there is a figure, else assumed.

    Idle replication work is per database (Litestream checks each one), so a figure measured on
    M databases is scaled to the config's accounts plus the PDS's top-level databases; the
    part one task makes whatever its databases (lease renewals) is not scaled.
    """
    if measured is None:
        return MeasuredRate(
            settings.backup_idle_requests_per_hour,
            "assumed ([cost] backup_idle_requests_per_hour; no measured figure in "
            f"{MEASURED_FILE})",
        )
    from pds_aws.backup.layout import TOP_LEVEL_DATABASES

    databases = measured.databases or (
        measured.accounts + len(TOP_LEVEL_DATABASES) if measured.accounts else None
    )
    source = f"{MEASURED_FILE} (from BENCHMARKS.md)"
    if not databases:
        return MeasuredRate(measured.requests_per_hour, f"{source}, scope not stated")
    ours = settings.accounts + len(TOP_LEVEL_DATABASES)
    per_task = measured.per_task_per_hour
    of_it = f", {per_task:,g} of it per task" if per_task else ""
    return MeasuredRate(
        per_task + (measured.requests_per_hour - per_task) * ours / databases,
        f"{source}: {measured.requests_per_hour:,g}/hour measured on {databases:,} "
        f"databases{of_it}, the rest scaled to {ours} ([cost] accounts = {settings.accounts})",
    )


def read_direct_failover(path: Path | None = None) -> Mapping[str, Any] | None:
    """The direct edge's measured failover record in measured.json, if recorded."""
    path = measured_path() if path is None else path
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8")).get(DIRECT_FAILOVER)
    return record if isinstance(record, Mapping) else None
