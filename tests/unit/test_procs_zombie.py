"""A process that has exited but is not yet reaped (a zombie) is not alive: `pds-aws upgrade`
stops a `local up` it started itself and waits for it to be gone."""

from __future__ import annotations

import os
import subprocess
import sys

from pds_aws.procs import pid_alive


def test_an_exited_unreaped_child_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Wait for the exit without reaping it (WNOWAIT leaves the zombie in place).
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())
