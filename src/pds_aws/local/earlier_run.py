"""An earlier run of the local runtime: refused while its supervisor lives, its processes ended
when the supervisor died without stopping them, its state file removed only by its own run."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from pds_aws.errors import LocalStateError
from pds_aws.local import direct_edge
from pds_aws.local.paths import LocalPaths
from pds_aws.local.processes import StartError
from pds_aws.names import LocalState
from pds_aws.procs import pid_alive


def refuse_if_running(paths: LocalPaths, warn: Callable[[str], None]) -> None:
    if not paths.state.is_file():
        return
    try:
        state = LocalState.read(paths.state)
    except LocalStateError:
        return
    pid = state.supervisor_pid
    if pid and pid != os.getpid() and pid_alive(pid):
        raise StartError(
            f"the local runtime is already running (pid {pid}, {state.url}); "
            f"stop it with `pds-aws local down` or Ctrl-C in its terminal"
        )
    # The supervisor died without stopping its processes (each runs in a session of its
    # own): end them, or an old sidecar and moto would write beside the new ones.
    for name, child in state.pids.items():
        if _started_by_local_runtime(child):
            warn(f"{name} (pid {child}) of an earlier run was still running: killed")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)


def clear_own_state(paths: LocalPaths) -> None:
    """Remove the state file if this process wrote it (never another run's)."""
    if paths.state.is_file():
        try:
            pid = LocalState.read(paths.state).supervisor_pid
        except LocalStateError:
            pid = 0
        if pid == os.getpid():
            paths.state.unlink(missing_ok=True)


# Command-line fragments of the processes this runtime starts, checked before ending a
# process recorded by an earlier run (its pid may have been reused since).
_OWN_PROCESS_MARKERS = (
    "pds_aws.local.",
    "pds_launcher.cjs",
    "plc_launcher.cjs",
    "pds-aws-backup",
    *direct_edge.PROCESS_MARKERS,
)


def _started_by_local_runtime(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return any(marker in cmdline for marker in _OWN_PROCESS_MARKERS)
