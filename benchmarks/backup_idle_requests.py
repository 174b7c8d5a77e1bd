"""Idle S3 requests of the backup sidecar: 200 accounts, no writes, requests counted at moto.

`pds-aws-backup run` backs up a PDS-shaped data directory (first boot adopting it) until
`status` lists every database, settles, and then nothing writes. The moto server in front of
the sidecar counts every S3 request it serves (benchmarks/backup_moto.py); the count over
the window is extrapolated to an hour. The window defaults to 10 minutes, twice Litestream's
L0 retention check interval (5 min, the sidecar's setting), so periodic checks are in it.

    .venv/bin/python benchmarks/backup_idle_requests.py --accounts 200 --window 600
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from backup_common import (
    Sidecar,
    command_line,
    emit_summary,
    machine,
    moto_server,
    populate,
    sidecar_env,
    wait_replicated,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--window", type=float, default=600.0, help="seconds counted")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before counting")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--litestream-override",
        type=json.loads,
        default=None,
        help="what-if: JSON merged into the sidecar's Litestream config, e.g. "
        '\'{"l0-retention-check-interval": "1h"}\'',
    )
    args = parser.parse_args()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, moto_server(Path(tmp)) as moto:
        root = Path(tmp)
        data = root / "data"
        databases = populate(data, args.accounts)
        env = sidecar_env(moto, "idle", data, root / "state")
        # Nothing here is SIGKILLed: the sidecar's own lease length, so that its renewals
        # count as they would in a task (guides/BACKUP.md, "One writer: the lease").
        del env["BACKUP_LEASE_SECONDS"]
        sidecar = Sidecar(env, root / "sidecar.log", args.litestream_override)
        sidecar.wait_healthy(timeout=600)
        wait_replicated(env, databases, timeout=1800)
        time.sleep(args.settle)
        moto.reset_requests()
        started = time.monotonic()
        per_minute: list[int] = []  # requests in each minute of the window
        seen = 0
        while time.monotonic() - started < args.window:
            time.sleep(min(60.0, args.window - (time.monotonic() - started)))
            total_so_far = sum(moto.requests().values())
            per_minute.append(total_so_far - seen)
            seen = total_so_far
        counts = moto.requests()
        window = time.monotonic() - started
        still_running = sidecar.process.poll() is None
        sidecar.stop()
    total = sum(counts.values())
    summary = {
        "benchmark": "idle_requests",
        "machine": host,
        "command": command_line(),
        "accounts": args.accounts,
        "litestream_override": args.litestream_override,
        "databases": databases,
        "window_s": round(window, 1),
        "requests_in_window": total,
        "by_operation": counts,
        "per_minute": per_minute,
        "requests_per_hour": round(total * 3600 / window),
        "sidecar_running_throughout": still_running,
    }
    emit_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
