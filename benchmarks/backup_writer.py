"""A PDS-like SQLite writer for the backup benchmarks: one row per commit at a fixed rate.

Opens the database as the PDS does beside Litestream (WAL, busy timeout, no automatic
checkpoints) and commits rows with increasing ids. After each commit it appends the id to
the acknowledgment file (an O_APPEND write reaches the page cache, so a SIGKILL of this process
keeps every acknowledged id). With --count it stops after that many commits and writes each
commit's latency (seconds) as JSON to --latencies.

    python benchmarks/backup_writer.py DB --acks FILE [--rate 100] [--count N --latencies FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

ROW_BYTES = 200  # about a small PDS record


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    # The PDS beside Litestream runs with PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT=true.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    # And commits as better-sqlite3 builds SQLite (deps/defines.gypi:
    # SQLITE_DEFAULT_WAL_SYNCHRONOUS=1; the PDS sets no `synchronous`): NORMAL, no fsync per
    # commit in WAL mode. Python's sqlite3 would fsync every commit (FULL), which Litestream's
    # own fsyncs on the same disk then slow.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS event (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def last_acknowledged(acks: Path) -> int:
    """The highest id in an acknowledgment file (a torn last line is ignored)."""
    ids = [int(line) for line in acks.read_text().splitlines() if line.strip().isdigit()]
    return max(ids, default=0)


def acknowledged_at(acks: Path) -> dict[int, float]:
    """id -> when it was acknowledged, from a `--timestamps` file (a torn last line ignored)."""
    out: dict[int, float] = {}
    for line in acks.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            try:
                out[int(parts[0])] = float(parts[1])
            except ValueError:
                continue
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database", type=Path)
    parser.add_argument("--acks", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="commits per second")
    parser.add_argument("--count", type=int, default=0, help="stop after N commits (0: never)")
    parser.add_argument("--latencies", type=Path)
    parser.add_argument(
        "--timestamps",
        action="store_true",
        help="write `ID MONOTONIC_TIME` per acknowledgment (the clock is system-wide)",
    )
    args = parser.parse_args()

    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    conn = connect(args.database)
    start_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM event").fetchone()[0])
    acks = os.open(args.acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    latencies: list[float] = []
    body = os.urandom(ROW_BYTES)
    started = time.monotonic()
    n = 0
    while not stop and (args.count == 0 or n < args.count):
        due = started + n / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        row_id = start_id + n + 1
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO event (id, body) VALUES (?, ?)", (row_id, body))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
        line = f"{row_id} {time.monotonic():.4f}" if args.timestamps else str(row_id)
        os.write(acks, f"{line}\n".encode())
        n += 1
    os.close(acks)
    conn.close()
    if args.latencies is not None:
        args.latencies.write_text(json.dumps(latencies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
