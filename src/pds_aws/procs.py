"""Process checks shared by the backup sidecar, the local runtime and the operator commands.

Standard library only: the sidecar image installs this package without the local runtime's or
the stack's dependencies, and imports this module.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
