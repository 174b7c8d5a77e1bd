"""Write overhead of the backup sidecar: the writer's commit latency with and without it.

A writer commits --commits rows at 100 rows/s to a WAL database in a data directory (as the
PDS does beside Litestream: no automatic checkpoints). In each round two writers run at the
same time, one in a directory `pds-aws-backup run` replicates to moto and one in a directory
nothing watches, so load from other processes on this shared machine falls on both alike
(measured one after the other, the p50 moved by +-20 % between runs with load alone).
Latencies of all rounds are pooled.

`--what-if-no-watch` adds a third writer in each round, beside a second sidecar whose Litestream
does not watch the directory (`watch: false`): how much of the overhead is the inotify event
each WAL write raises for Litestream's directory watch. Not a setting the sidecar could use as
it is: without the watch, Litestream finds no database created after it started (a new
account) until its next start.

    .venv/bin/python benchmarks/backup_write_overhead.py --rounds 3 --commits 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backup_common import (
    Sidecar,
    command_line,
    emit_summary,
    machine,
    moto_server,
    percentile,
    sidecar_env,
    start_writer,
)
from backup_writer import connect

RATE = 100.0
DATABASE = "sequencer.sqlite"


def run_writers(directories: list[Path], commits: int) -> list[list[float]]:
    """One writer per data directory, all at once; each one's commit latencies."""
    writers = [
        start_writer(
            data / DATABASE,
            data.parent / f"{data.name}.acks",
            rate=RATE,
            count=commits,
            latencies=data.parent / f"{data.name}.latencies.json",
        )
        for data in directories
    ]
    for writer in writers:
        code = writer.wait(timeout=commits / RATE * 5 + 60)
        if code != 0:
            raise RuntimeError(f"writer exited {code}")
    return [
        json.loads((data.parent / f"{data.name}.latencies.json").read_text())
        for data in directories
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commits", type=int, default=1000, help="commits per round and mode")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--what-if-no-watch",
        action="store_true",
        help="also measure a writer beside a sidecar whose Litestream does not watch the directory",
    )
    args = parser.parse_args()
    host = machine()
    modes = ["alone", "replicated"] + (["replicated_no_watch"] if args.what_if_no_watch else [])
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    overrides: dict[str, dict[str, Any] | None] = {
        "replicated": None,
        "replicated_no_watch": {"dbs": {"watch": False}},
    }
    with tempfile.TemporaryDirectory(prefix="bench-write-") as tmp, moto_server(Path(tmp)) as moto:
        root = Path(tmp)
        for n in range(args.rounds):
            directories = [root / f"{mode}-{n}" for mode in modes]
            for data in directories:
                data.mkdir()
                connect(data / DATABASE).close()
            sidecars = [
                Sidecar(
                    sidecar_env(moto, f"write-{mode}-{n}", data, root / f"{mode}-{n}-state"),
                    root / f"{mode}-{n}.log",
                    litestream_override=overrides[mode],
                )
                for mode, data in zip(modes, directories, strict=True)
                if mode != "alone"
            ]
            for sidecar in sidecars:
                sidecar.wait_healthy(timeout=120)
            time.sleep(1)  # Litestream has found the database
            for mode, values in zip(modes, run_writers(directories, args.commits), strict=True):
                latencies[mode] += values
            for sidecar in sidecars:
                if sidecar.process.poll() is not None:
                    raise RuntimeError(f"sidecar died during the round; see {sidecar.log_path}")
                sidecar.stop()

    def ms(values: list[float], fraction: float) -> float:
        return round(percentile(values, fraction) * 1000, 3)

    summary: dict[str, Any] = {
        "benchmark": "write_overhead",
        "machine": host,
        "command": command_line(),
        "rate_per_s": RATE,
        "commits_per_mode": len(latencies["alone"]),
    }
    for mode, values in latencies.items():
        summary[f"{mode}_ms"] = {f"p{q}": ms(values, q / 100) for q in (50, 95, 99)}
    p50_alone = summary["alone_ms"]["p50"]
    summary["p50_overhead_percent"] = round(
        (summary["replicated_ms"]["p50"] / p50_alone - 1) * 100, 1
    )
    if "replicated_no_watch" in latencies:
        summary["p50_overhead_no_watch_percent"] = round(
            (summary["replicated_no_watch_ms"]["p50"] / p50_alone - 1) * 100, 1
        )
    emit_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
