"""`pds-aws backup drill|restore`: the backup program's drill and point-in-time restore, run
where the target's data lives.

The work itself is the backup program's (`pds-aws-backup drill`, `restore-at`): a restore
builds a new backup generation from the current one as of a time and makes it current; it
never deletes or overwrites history. These functions only choose where it runs and stop and
start the PDS around it:

- locally, the program runs on this machine against the local runtime's emulated S3;
- on AWS, it runs as a one-off Fargate task of the stack's drill task definition, and a
  restore first scales the service to 0 (nothing writes while history forks) and back to 1
  (the new task restores the new current generation).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pds_aws.procs import pid_alive

BACKUP_PROGRAM = ("pds-aws-backup",)
PROGRAM_TIMEOUT_S = 3600.0
LATEST = "latest"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProgramResult:
    code: int
    summary: dict[str, Any] | None
    output: str


def restore_command(at: str, generation: str | None) -> list[str]:
    """`pds-aws-backup restore-at` arguments."""
    command = [*BACKUP_PROGRAM, "restore-at", at]
    if generation:
        command += ["--generation", generation]
    return command


def undo_generation(chain: Sequence[Mapping[str, Any]]) -> str | None:
    """The history the most recent restore in this lineage branched off (its `previous`).

    `chain` is the current generation and the ones it was made from, newest first (the
    backup program's ORIGIN records): every task start makes a new generation from the
    current one, so the restore is found by walking back, not by taking the last id.
    """
    for origin in chain:
        if origin.get("reason") == "restore-at" and origin.get("previous"):
            return str(origin["previous"])
    return None


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def latest_generation(backup_env: Mapping[str, str]) -> str | None:
    """Where `--at latest` goes: the history the last restore branched off, if any."""
    from pds_aws.backup.generations import generation_chain, read_current
    from pds_aws.backup.settings import settings_from_env
    from pds_aws.backup.store import open_store

    # The store's S3 client takes credentials from the environment (locally: the emulator's).
    with _environment(backup_env):
        store = open_store(settings_from_env({**os.environ, **backup_env}))
        current = read_current(store)
        return undo_generation(generation_chain(store, current)) if current else None


def restore_steps(target_name: str, at: str, generation: str | None, local: bool) -> list[str]:
    """What a restore will do, in the operator's words, before asking."""
    source = f"generation {generation}" if generation else "the current backup generation"
    when = "its newest state" if at == LATEST else f"its state at {at}"
    if local:
        stop, start = (
            "stop the local runtime (PDS first, then the backup sidecar after its final sync)",
            "start the local runtime again (`make run`): the sidecar restores the new generation",
        )
    else:
        stop, start = (
            f"scale the ECS service of {target_name} to 0 tasks (the sidecar syncs on the way out)",
            "scale the service back to 1: the new task restores the new generation",
        )
    return [
        f"1. {stop}",
        f"2. run `pds-aws-backup {' '.join(restore_command(at, generation)[1:])}`: a NEW backup "
        f"generation is built from {source} as of {when} and made current",
        f"3. {start}",
        "Nothing is deleted: every older generation stays in the backup, so you can go back "
        "with `pds-aws backup restore --at latest --generation ID` (ids: `pds-aws status`).",
        "The PDS is offline from step 1 until step 3 has finished.",
    ]


def last_summary(lines: Sequence[str]) -> dict[str, Any] | None:
    """The backup program's JSON summary: the last JSON object among its output lines."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def run_backup_program(
    arguments: Sequence[str], backup_env: Mapping[str, str], timeout: float = PROGRAM_TIMEOUT_S
) -> ProgramResult:
    """Run the backup program on this machine; its stderr goes to ours (it logs progress)."""
    env = {**os.environ, **backup_env}
    result = subprocess.run(
        [sys.executable, "-m", "pds_aws.backup", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    summary = last_summary(result.stdout.splitlines())
    return ProgramResult(result.returncode, summary, result.stdout)


# -- local ------------------------------------------------------------------------------------


def local_backup_env(state: Mapping[str, Any]) -> dict[str, str]:
    """The local runtime's backup location as the backup program reads it."""
    from pds_aws.local.taskdef import LOCAL_AWS_CREDENTIALS

    if not state.get("backup_url"):
        raise RuntimeError(
            "the local runtime reports no backup_url: its task has no backup container"
        )
    env = {"BACKUP_URL": str(state["backup_url"]), "AWS_REGION": str(state.get("region", ""))}
    if state.get("moto_url"):
        env["AWS_ENDPOINT_URL"] = str(state["moto_url"])
        env.update(LOCAL_AWS_CREDENTIALS)
    return env


def stop_local_runtime(
    state: Mapping[str, Any], progress: Progress, timeout: float = 180.0
) -> None:
    """Ask the `local up` supervisor to stop (as `pds-aws local down`) and wait for it."""
    pid = int(state.get("supervisor_pid", 0))
    if not pid or not pid_alive(pid):
        return
    progress(f"stopping the local runtime (pid {pid}); the sidecar syncs before it exits")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local runtime (pid {pid}) did not stop in {timeout:.0f} s")
        time.sleep(0.5)


def local_aws_state_dir(state: Mapping[str, Any]) -> Path:
    """Where the local AWS keeps its journal (beside the data directory, under .local/)."""
    from pds_aws.local.runtime import LocalPaths

    root = Path(str(state["data_dir"])).parent.parent
    return LocalPaths(root).aws


def with_local_aws(
    state: Mapping[str, Any],
    work: Callable[[dict[str, str]], ProgramResult],
    progress: Progress,
) -> ProgramResult:
    """Run `work` against the stopped runtime's local AWS, started alone from its journal."""
    from pds_aws.local.processes import free_port, start_process, tcp_open, wait_until

    port = free_port()
    state_dir = local_aws_state_dir(state)
    progress(f"starting the local AWS alone from {state_dir} on port {port}")
    process = start_process(
        "aws-for-restore",
        [
            sys.executable,
            "-m",
            "pds_aws.local.aws_emulator",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
        ],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"},
        log=state_dir.parent / "logs" / "aws-for-restore.log",
        cwd=state_dir.parent.parent,
    )
    try:
        wait_until(process, tcp_open(port), timeout=60.0, what="listening")
        env = {**local_backup_env(state), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        return work(env)
    finally:
        process.stop(30.0)
