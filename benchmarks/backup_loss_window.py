"""Loss window of the backup sidecar: rows lost when the task is killed, at the default settings.

Each trial: a fresh backup prefix on moto and a fresh data directory; `pds-aws-backup run`
starts and becomes healthy; a writer commits 100 rows/s to a WAL database in the data
directory; at a random moment (5-15 s in) the sidecar (with its Litestream child) and the
writer are SIGKILLed together, as when a Fargate task dies. Then `pds-aws-backup run` restores
into an empty directory and the rows lost are the acknowledged ids the restore lacks.
SIGTERM trials stop the writer, then SIGTERM the sidecar (the order ECS uses: the PDS depends
on the backup container, so it stops first); nothing acknowledged may be lost.

    .venv/bin/python benchmarks/backup_loss_window.py --trials 10 --sigterm-trials 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backup_common import (
    Moto,
    Sidecar,
    command_line,
    emit_summary,
    machine,
    max_row_id,
    moto_server,
    sidecar_env,
    start_writer,
    stop_process,
)
from backup_writer import connect, last_acknowledged

RATE = 100.0  # commits per second
DATABASE = "sequencer.sqlite"  # a top-level PDS database: one row per firehose event


def trial(moto: Moto, root: Path, number: int, *, kill: bool, rng: random.Random) -> dict[str, Any]:
    prefix = f"loss-{number}-{'kill' if kill else 'term'}"
    data = root / f"{prefix}-data"
    data.mkdir()
    connect(data / DATABASE).close()  # the PDS creates its databases before writing
    acks = root / f"{prefix}.acks"
    env = sidecar_env(moto, prefix, data, root / f"{prefix}-state")
    sidecar = Sidecar(env, root / f"{prefix}.log")
    sidecar.wait_healthy(timeout=120)
    time.sleep(1)  # Litestream has found the database
    writer = start_writer(data / DATABASE, acks, rate=RATE)
    run_for = rng.uniform(5.0, 15.0)
    time.sleep(run_for)
    if kill:
        writer.kill()
        sidecar.kill()
        writer.wait(timeout=30)
    else:
        stop_process(writer)
        code = sidecar.stop()
        if code != 0:
            raise RuntimeError(f"sidecar exited {code} on SIGTERM; see {sidecar.log_path}")
    acknowledged = last_acknowledged(acks)

    restored_dir = root / f"{prefix}-restored"
    restorer = Sidecar(
        sidecar_env(moto, prefix, restored_dir, root / f"{prefix}-restored-state"),
        root / f"{prefix}-restore.log",
    )
    restorer.wait_healthy(timeout=300)
    restored = max_row_id(restored_dir / DATABASE)
    restorer.stop()
    lost = max(0, acknowledged - restored)
    return {
        "signal": "SIGKILL" if kill else "SIGTERM",
        "ran_s": round(run_for, 2),
        "acknowledged": acknowledged,
        "restored": restored,
        "lost_rows": lost,
        "lost_s": round(lost / RATE, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--sigterm-trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    host = machine()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-loss-") as tmp, moto_server(Path(tmp)) as moto:
        root = Path(tmp)
        for n in range(args.trials):
            results.append(trial(moto, root, n, kill=True, rng=rng))
            print(json.dumps(results[-1]), flush=True)
        for n in range(args.sigterm_trials):
            results.append(trial(moto, root, n, kill=False, rng=rng))
            print(json.dumps(results[-1]), flush=True)
    killed = [r["lost_rows"] for r in results if r["signal"] == "SIGKILL"]
    termed = [r["lost_rows"] for r in results if r["signal"] == "SIGTERM"]
    summary = {
        "benchmark": "loss_window",
        "machine": host,
        "command": command_line(),
        "rate_per_s": RATE,
        "trials": results,
        "sigkill_lost_rows": killed,
        "sigkill_lost_max": max(killed, default=None),
        "sigkill_lost_mean": round(statistics.mean(killed), 1) if killed else None,
        "sigterm_lost_rows": termed,
        "seconds": round(time.monotonic() - started, 1),
    }
    emit_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
