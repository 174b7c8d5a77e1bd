"""The health marker, the `health` command, and waiting for the PDS before replicating
(guides/BACKUP.md, "Start: wait for the PDS").
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pds_aws.backup.logs import info, iso_utc
from pds_aws.backup.settings import Settings
from pds_aws.procs import pid_alive

HEALTH_FILE = "healthy.json"

# How often the PDS health URL is probed while waiting for the PDS: Litestream starts at most
# this long after the PDS answers (and may acknowledge writes).
PDS_POLL_S = 0.5

PDS_PROBE_TIMEOUT_S = 2.0

PDS_PROGRESS_S = 30.0  # one "still waiting" line this often


def health_path(settings: Settings) -> Path:
    return settings.state_dir / HEALTH_FILE


def write_health(settings: Settings, litestream_pid: int | None, generation: str) -> None:
    """`litestream_pid` None: restored, waiting for the PDS before replicating."""
    marker = {
        "pid": os.getpid(),
        "litestream_pid": litestream_pid,
        "generation": generation,
        "since": iso_utc(datetime.now(UTC)),
    }
    path = health_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, path)


def health(settings: Settings, args: argparse.Namespace) -> int:
    path = health_path(settings)
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        print(f"unhealthy: no health marker at {path} (restore not finished or failed)")
        return 1
    for name in ("pid", "litestream_pid"):
        pid = marker.get(name)
        if name == "litestream_pid" and pid is None:
            continue  # restored, Litestream starts once the PDS is up
        if not isinstance(pid, int) or not pid_alive(pid):
            print(f"unhealthy: {name} {pid} is not running")
            return 1
    if marker.get("litestream_pid") is None:
        print(f"healthy: restored, waiting for the PDS to replicate {marker.get('generation')}")
    else:
        print(f"healthy: replicating generation {marker.get('generation')}")
    return 0


def wait_for_pds(
    pds_up: Callable[[], bool],
    stop: threading.Event,
    *,
    url: str,
    on_tick: Callable[[], object] = lambda: None,
    interval: float = PDS_POLL_S,
    progress_every: float = PDS_PROGRESS_S,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[str], None] = info,
) -> bool:
    """Probe until the PDS answers (True) or a stop signal arrives (False).

    `on_tick` runs before each probe (key uploads must not wait for the PDS); one progress
    line every `progress_every` seconds says how long we have waited.
    """
    started = clock()
    next_report = started + progress_every
    while True:
        on_tick()
        if pds_up():
            report(f"the PDS answers {url} after {clock() - started:.1f} s")
            return True
        now = clock()
        if now >= next_report:
            report(
                f"still waiting for the PDS at {url} ({now - started:.0f} s); Litestream starts "
                "once it answers (the PDS migrates its databases before it listens)"
            )
            next_report = now + progress_every
        if stop.wait(interval):
            return False


def pds_answers(url: str) -> bool:
    """True when `url` answers 2xx: the PDS has migrated its databases and listens."""
    try:
        with urllib.request.urlopen(url, timeout=PDS_PROBE_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
