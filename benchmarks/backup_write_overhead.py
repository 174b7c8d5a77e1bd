"""Write overhead of the backup sidecar: the writer's commit latency with and without it.

A writer commits --commits rows at 100 rows/s to a WAL database in a data directory (as the
PDS does beside Litestream: no automatic checkpoints). In each round two writers run at the
same time, one in a directory `pds-aws-backup run` replicates to moto and one in a directory
nothing watches, so load from other processes on this shared machine falls on both alike
(measured one after the other, the p50 moved by +-20 % between runs with load alone).
Latencies of all rounds are pooled.

    .venv/bin/python benchmarks/backup_write_overhead.py --rounds 3 --commits 1000
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
    args = parser.parse_args()
    host = machine()
    alone: list[float] = []
    replicated: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-write-") as tmp, moto_server(Path(tmp)) as moto:
        root = Path(tmp)
        for n in range(args.rounds):
            unwatched, watched = root / f"alone-{n}", root / f"replicated-{n}"
            for data in (unwatched, watched):
                data.mkdir()
                connect(data / DATABASE).close()
            sidecar = Sidecar(
                sidecar_env(moto, f"write-{n}", watched, root / f"replicated-{n}-state"),
                root / f"replicated-{n}.log",
            )
            sidecar.wait_healthy(timeout=120)
            time.sleep(1)  # Litestream has found the database
            round_alone, round_replicated = run_writers([unwatched, watched], args.commits)
            alone += round_alone
            replicated += round_replicated
            if sidecar.process.poll() is not None:
                raise RuntimeError(f"sidecar died during the round; see {sidecar.log_path}")
            sidecar.stop()

    def ms(values: list[float], fraction: float) -> float:
        return round(percentile(values, fraction) * 1000, 3)

    p50_alone, p50_replicated = ms(alone, 0.5), ms(replicated, 0.5)
    summary = {
        "benchmark": "write_overhead",
        "machine": host,
        "command": command_line(),
        "rate_per_s": RATE,
        "commits_per_mode": len(alone),
        "alone_ms": {"p50": p50_alone, "p95": ms(alone, 0.95), "p99": ms(alone, 0.99)},
        "replicated_ms": {
            "p50": p50_replicated,
            "p95": ms(replicated, 0.95),
            "p99": ms(replicated, 0.99),
        },
        "p50_overhead_percent": round((p50_replicated / p50_alone - 1) * 100, 1),
    }
    emit_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
