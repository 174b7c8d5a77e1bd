"""Process checks shared by the backup sidecar, the local runtime and the operator commands.

Standard library only: the sidecar image installs this package without the local runtime's or
the stack's dependencies, and imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one we may not signal counts as alive). A zombie
    has exited: it only waits for its parent to read its status (e.g. a `local up` that
    `pds-aws upgrade` started and then stopped), so it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")".
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"


# What the command line of a process of ours holds: the `pds-aws` CLI (the `local up`
# supervisor) and the modules and scripts it starts.
OWN_COMMAND_MARKERS = ("pds-aws", "pds_aws")


def command_line(pid: int) -> str | None:
    """The process's command line (Linux /proc), None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_our_process(pid: int, markers: tuple[str, ...] = OWN_COMMAND_MARKERS) -> bool:
    """Whether `pid` is alive and its command line shows it is ours: a pid recorded in a
    state file may since have been reused by an unrelated process, which must never be
    signalled."""
    if not pid_alive(pid):
        return False
    cmdline = command_line(pid)
    return cmdline is not None and any(marker in cmdline for marker in markers)
