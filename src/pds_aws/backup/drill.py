"""`drill`: restore the current generation into a scratch directory, check it, report JSON."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from pds_aws.backup.generations import read_current
from pds_aws.backup.layout import (
    CURRENT_OBJECT,
)
from pds_aws.backup.logs import error
from pds_aws.backup.restore import RestoreFailed, restore_generation
from pds_aws.backup.settings import Settings
from pds_aws.backup.store import StoreError, open_store


def drill(settings: Settings, args: argparse.Namespace) -> int:
    started = time.monotonic()
    summary: dict[str, object] = {
        "ok": False,
        "generation": None,
        "accounts": 0,
        "databases": 0,
        "key_files": 0,
        "bytes": 0,
        "seconds": 0.0,
        "problems": [],
    }
    problems: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="pds-aws-drill-"))
    try:
        store = open_store(settings)
        store.check_access()
        generation = read_current(store)
        summary["generation"] = generation
        if generation is None:
            problems.append(f"no backup at {settings.backup_url} ({CURRENT_OBJECT} is missing)")
        else:
            report = restore_generation(settings, store, generation, scratch)
            if report.plan is None:
                problems.append(f"generation {generation} of {settings.backup_url} is empty")
            else:
                summary.update(
                    accounts=len(report.plan.accounts),
                    databases=report.databases,
                    key_files=report.key_files,
                    bytes=report.bytes,
                )
    except RestoreFailed as exc:
        problems.extend(exc.problems)
    except StoreError as exc:
        problems.append(str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary["problems"] = problems
    summary["ok"] = not problems
    summary["seconds"] = round(time.monotonic() - started, 3)
    for problem in problems:
        error(f"drill: {problem}")
    print(json.dumps(summary), flush=True)
    return 0 if not problems else 1
