"""The sidecar's log lines (guides/BACKUP.md, "Log format").

One plain-text line per event on stderr, starting with the level word: `INFO backup: ...`,
`WARN backup: ...`, `ERROR backup: ...`; the stack's metric filter counts `ERROR`. Secrets
never reach the log: only paths, counts, object keys and AWS error codes do.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

_log_lock = threading.Lock()


def log(level: str, message: str) -> None:
    with _log_lock:
        print(f"{level} {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    log("INFO", f"backup: {message}")


def warn(message: str) -> None:
    log("WARN", f"backup: {message}")


def error(message: str) -> None:
    log("ERROR", f"backup: {message}")


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
