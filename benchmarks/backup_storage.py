"""Storage after restarts: bytes under the backup prefix after each of N restarts of a
PDS-shaped data directory of 200 accounts, against the live data's size.

A first `pds-aws-backup run` adopts the directory (first boot) and stops with SIGTERM. Then,
N times: a new sidecar restores into an empty directory, turns healthy (Litestream's first
sync done), a writer commits 50 rows to `sequencer.sqlite`, and the sidecar stops with
SIGTERM (its final sync); the next restart restores from there. After each restart the
objects under the prefix are listed at the moto server: their bytes, count, and the number
of generations. Live data = the restored directory's database files (WAL included) and key
files after the last restart.

    .venv/bin/python benchmarks/backup_storage.py --accounts 200 --restarts 20 --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backup_common import (
    BUCKET,
    Moto,
    Sidecar,
    command_line,
    emit_summary,
    machine,
    moto_server,
    populate,
    sidecar_env,
    start_writer,
)

PREFIX = "storage"
BEGIN = "<!-- backup-storage:begin (benchmarks/backup_storage.py writes this) -->"
END = "<!-- backup-storage:end -->"


def stored(moto: Moto) -> dict[str, Any]:
    """Bytes and objects under the prefix, by kind."""
    total = objects = snapshot = level0 = 0
    generations: set[str] = set()
    for page in (
        moto.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/generations/")
    ):
        for item in page.get("Contents", []):
            key, size = item["Key"], int(item["Size"])
            total += size
            objects += 1
            generations.add(key.split("/")[2])
            if re.search(r"/0009/[0-9a-f-]+\.ltx$", key):
                snapshot += size
            elif re.search(r"/0000/[0-9a-f-]+\.ltx$", key):
                level0 += size
    return {
        "bytes": total,
        "objects": objects,
        "generations": len(generations),
        "snapshot_bytes": snapshot,
        "level0_bytes": level0,
    }


def live_bytes(data: Path) -> int:
    return sum(
        p.stat().st_size
        for p in data.rglob("*")
        if p.is_file()
        and "-litestream" not in p.as_posix()
        and (".sqlite" in p.name or p.name == "key" or "reserved_keys" in p.as_posix())
    )


def run(accounts: int, restarts: int) -> dict[str, Any]:
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp,
        moto_server(Path(tmp)) as moto,
    ):
        root = Path(tmp)
        first = root / "first"
        populate(first, accounts)
        seed = Sidecar(sidecar_env(moto, PREFIX, first, root / "first-state"), root / "first.log")
        seed.wait_healthy(timeout=1800)
        unclean = 0 if seed.stop() == 0 else 1  # see backup_restart_loss.py
        rows.append({"restart": 0, **stored(moto)})
        data = first
        for n in range(1, restarts + 1):
            data = root / f"run{n}"
            env = sidecar_env(moto, PREFIX, data, root / f"run{n}-state")
            sidecar = Sidecar(env, root / f"run{n}.log")
            sidecar.wait_healthy(timeout=1800)
            writer = start_writer(
                data / "sequencer.sqlite", root / f"run{n}.acks", rate=50, count=50
            )
            writer.wait(timeout=120)
            if sidecar.stop() != 0:
                unclean += 1
                print(f"warning: restart {n} did not stop cleanly: {sidecar.log_path}")
            rows.append({"restart": n, **stored(moto)})
            print(rows[-1], flush=True)
        live = live_bytes(data)
    return {
        "benchmark": "storage_after_restarts",
        "machine": machine(),
        "command": command_line(),
        "accounts": accounts,
        "restarts": restarts,
        "live_bytes": live,
        "unclean_stops": unclean,
        "rows": rows,
        "seconds": round(time.monotonic() - started, 1),
    }


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def section(result: dict[str, Any]) -> str:
    live = result["live_bytes"]
    shown = [r for r in result["rows"] if r["restart"] in {0, 1, 2, 5, 10, 20, result["restarts"]}]
    table = "\n".join(
        f"| {r['restart']} | {_mib(r['bytes'])} | {r['bytes'] / live:.1f} | {r['objects']} | "
        f"{r['generations']} | {_mib(r['level0_bytes'])} | {_mib(r['snapshot_bytes'])} |"
        for r in shown
    )
    command = re.sub(r" --(json|write) \S+", "", result["command"])
    return f"""{BEGIN}
### Storage after restarts (target: proportional to live data and the window, not to restarts)

{result["accounts"]} accounts, live data {_mib(live)} (databases and key files on disk). Each
restart: restore, healthy, 50 writes, SIGTERM. Bytes under the backup prefix after each:

| restarts | stored | times live data | objects | generations | of it, level 0 | of it, snapshots |
|---:|---:|---:|---:|---:|---:|---:|
{table}

A restart makes no generation, and writes no database again: Litestream resumes each
restored database's replica at its restored position (guides/BACKUP.md, step 4), so a
restart adds what was written after it (here 50 writes, as level-0 files). What grew over the
first restarts is Litestream's periodic work, which its monitors do at start for each
database that has none in the current period, one database after the other (so each short
restart got further through them): the day's snapshot (level 9, one compressed copy of the
database) and the level-1 compaction (every 6 h: the level-0 files since the previous one
merged into one file, one copy of each page; level-0 files are deleted 5 min after they are
compacted). That is one copy per period, however many restarts.
Snapshots (one a day) and level-1 files older than the oldest snapshot are deleted after
`history_days` + 1 day. Not measured here: the compaction itself (6 h).

Stops that timed out (Litestream killed after 60 s): {result["unclean_stops"]}.
Command: `{command}`. Machine: {result["machine"]}. Run took {result["seconds"]:.0f} s.
{END}"""


def write_section(path: Path, text: str) -> None:
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + text + tail, encoding="utf-8")
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + text + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--write", type=Path, help="replace this section of BENCHMARKS.md")
    args = parser.parse_args()
    result = run(args.accounts, args.restarts)
    emit_summary(result, args.json)
    if args.write is not None:
        write_section(args.write, section(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
