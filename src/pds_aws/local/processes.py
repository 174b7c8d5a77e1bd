"""Starting, checking and stopping the local runtime's processes, each by its own id.

Every process starts in a session of its own, so a SIGKILL can take its children too (the
backup sidecar's Litestream): that is what a crashed task looks like. Stopping is SIGTERM to
the process first, SIGKILL to its group only after its stop timeout, as ECS does.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pds_aws.errors import PdsAwsError


class StartError(PdsAwsError):
    """A component did not come up; the message says which, why, and where its log is."""


# Ports handed to local servers come from below the kernel's ephemeral range (and above this).
_LOWEST_PORT = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives to bind(0) and to the source side of outgoing connections."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32768, 65535  # Linux's default start, up to macOS's 49152-65535
    return low, high


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, outside the kernel's ephemeral range.

    A port from bind(0) lies in the range the kernel also uses for the source ports of outgoing
    connections, so between this check and the server's own bind any connection (a readiness
    probe, an SDK call) can take it, and the server fails with EADDRINUSE. Below that range the
    kernel gives a port only to whoever asks for it by number.
    """
    low, high = _ephemeral_range()
    candidates = [port for port in range(_LOWEST_PORT, 65536) if not low <= port <= high]
    chooser = random.SystemRandom()
    for _ in range(200):
        port = chooser.choice(candidates)
        if port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers bind: a port whose old connections linger in TIME_WAIT is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def failure(self, what: str) -> StartError:
        return StartError(f"{self.name} {what}; its log ({self.log}) ends with:\n{tail(self.log)}")

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, wait up to `timeout` s, then SIGKILL its process group."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill_group()
        return self.popen.poll()

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a crash)."""
        self.kill_group()
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def kill_group(self) -> None:
        # The group id is the process's own pid (start_new_session): only what it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def start_process(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path
) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {name}\n".encode())
        out.flush()
        try:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise StartError(f"{name}: cannot run {argv[0]!r}: {exc}") from None
    return Process(name, popen, log)


def wait_until(
    process: Process, check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.25
) -> None:
    """Poll `check` until it passes; fail fast if the process exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            raise process.failure(f"exited with code {process.popen.returncode} before {what}")
        if check():
            return
        if time.monotonic() > deadline:
            raise process.failure(f"was not {what} after {timeout:.0f} s")
        time.sleep(every)


def tcp_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", port)) == 0

    return check


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError):
            return False

    return check


def command_ok(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float
) -> Callable[[], bool]:
    """A container health check: the task definition's command, exit 0 means healthy."""

    def check() -> bool:
        try:
            return (
                subprocess.run(
                    list(argv),
                    env=dict(env),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=timeout,
                    check=False,
                ).returncode
                == 0
            )
        except (subprocess.TimeoutExpired, OSError):
            return False

    return check
