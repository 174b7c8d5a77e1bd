"""Restore rate of the backup sidecar: accounts restored per second from moto as S3.

For each size: a data directory shaped like a PDS's (three top-level databases, N accounts
with a store.sqlite of ~20 records and a key file; with `--large-gb`, also a data set of that
size in a few large repositories) is backed up by `pds-aws-backup run`
(a first boot adopting the files; stopped with SIGTERM once `status` lists every database).
Then `pds-aws-backup run` starts on an empty directory and the figure is the time until its
`health` passes: what a replacement task waits before the PDS may start.

    .venv/bin/python benchmarks/backup_restore_rate.py --accounts 200 1000 --large-gb 1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import re
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
    free_port,
    machine,
    moto_server,
    populate,
    sidecar_env,
    wait_replicated,
)

LARGE_RECORD_BYTES = 4096  # records of a large repository: incompressible, like CBOR blocks


def measure(
    moto: Moto,
    root: Path,
    accounts: int,
    logs: Path | None,
    records_per_account: int = 20,
    record_bytes: int = 200,
) -> dict[str, Any]:
    prefix = f"restore-{accounts}-{records_per_account}"
    source = root / f"{prefix}-source"
    databases = populate(source, accounts, records_per_account, record_bytes)
    data_bytes = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    env = sidecar_env(moto, prefix, source, root / f"{prefix}-source-state")
    backup = Sidecar(env, root / f"{prefix}-backup.log")
    backup.wait_healthy(timeout=600)
    replicated_s = wait_replicated(env, databases, timeout=1800)
    if backup.stop() != 0:
        raise RuntimeError(f"backup sidecar failed to stop cleanly; see {backup.log_path}")

    target = root / f"{prefix}-restored"
    restore_env = sidecar_env(moto, prefix, target, root / f"{prefix}-restored-state")
    # As in the task: the PDS starts only once this sidecar is healthy, so nothing answers its
    # health URL yet, and the sidecar reports healthy as soon as the restore is done (it
    # uploads the new generation after the PDS is up).
    restore_env["PDS_HEALTH_URL"] = f"http://127.0.0.1:{free_port()}/xrpc/_health"
    moto.reset_requests()
    restorer = Sidecar(restore_env, root / f"{prefix}-restore.log")
    started = time.monotonic()
    try:
        healthy_s = restorer.wait_healthy(timeout=1800)
    finally:
        requests = moto.requests()  # the restore's, before the stop's final uploads
        restorer.stop()
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            (logs / f"{prefix}-restore.log").write_text(restorer.log_path.read_text())
    restored_stores = len(list(target.glob("actors/*/*/store.sqlite")))
    restored_keys = len(list(target.glob("actors/*/*/key")))
    if restored_stores != accounts or restored_keys != accounts:
        raise RuntimeError(f"restored {restored_stores} stores and {restored_keys} keys")
    log = restorer.log_path.read_text(errors="replace")
    # The sidecar's own phase lines: key files, then databases, then Litestream's first sync.
    reported = re.search(r"restored (\d+) databases in ([\d.]+) s", log)
    key_files = re.search(r"restored (\d+) key files and reserved keys in ([\d.]+) s", log)
    first_sync = re.search(
        r"Litestream's first sync: \d+ databases in the backup after ([\d.]+) s", log
    )
    return {
        "accounts": accounts,
        "databases": databases,
        "data_mb": round(data_bytes / 2**20, 1),
        "large_repositories": record_bytes == LARGE_RECORD_BYTES,
        "backup_replicated_s": round(replicated_s, 1),
        "start_to_healthy_s": round(healthy_s, 1),
        "accounts_per_s": round(accounts / healthy_s, 1),
        "databases_restore_s_logged": float(reported.group(2)) if reported else None,
        "key_files_restore_s_logged": float(key_files.group(2)) if key_files else None,
        "first_sync_s_logged": float(first_sync.group(1)) if first_sync else None,
        "wall_s": round(time.monotonic() - started, 1),
        # Every GET of the restore (LTX objects, key files, CURRENT, ORIGIN, LEASE) per
        # restored database; LISTs are one listing of the generation.
        "gets_per_database": round(requests.get("GetObject", 0) / databases, 2),
        "lists": requests.get("ListObjects", 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument(
        "--large-gb",
        type=float,
        default=0,
        help="also restore a data set of this many GiB held by --large-repos repositories",
    )
    parser.add_argument("--large-repos", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--logs", type=Path, help="keep the restoring sidecar's log here")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each size this many times (each against a new store); the median is "
        "reported, with every run's time (this shared machine's load moves one run by 20 %%)",
    )
    args = parser.parse_args()
    host = machine()
    results = []
    sizes: list[tuple[int, int, int]] = [(n, 20, 200) for n in args.accounts]
    if args.large_gb:
        records = int(args.large_gb * 2**30 / args.large_repos / LARGE_RECORD_BYTES)
        sizes.append((args.large_repos, records, LARGE_RECORD_BYTES))
    for accounts, records_per_account, record_bytes in sizes:
        runs = []
        for _ in range(args.repeat):
            # Each run against its own store: what an earlier one left in moto (its objects,
            # its listing index) must not slow the next one.
            with (
                tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp,
                moto_server(Path(tmp)) as moto,
            ):
                runs.append(
                    measure(moto, Path(tmp), accounts, args.logs, records_per_account, record_bytes)
                )
            print(json.dumps(runs[-1]), flush=True)
        runs.sort(key=lambda run: float(run["start_to_healthy_s"]))
        median = dict(runs[len(runs) // 2])
        median["start_to_healthy_runs_s"] = [run["start_to_healthy_s"] for run in runs]
        results.append(median)
    summary = {
        "benchmark": "restore_rate",
        "machine": host,
        "command": command_line(),
        "sizes": results,
    }
    emit_summary(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
