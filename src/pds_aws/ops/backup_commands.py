"""`pds-aws backup drill|restore`: the backup program's drill and point-in-time restore, run
where the target's data lives (the commands and the steps they take).

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

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pds_aws.errors import OperationError
from pds_aws.names import DRILL_CONTAINER, LocalState
from pds_aws.ops.common import (
    add_command,
    add_target_options,
    backup_env_of,
    guarded,
    progress,
    stack_of,
    target_of,
)
from pds_aws.procs import is_our_process, pid_alive

if TYPE_CHECKING:
    from pds_aws.ops.common import Subparsers
    from pds_aws.ops.target import Target

BACKUP_PROGRAM = ("pds-aws-backup",)
PROGRAM_TIMEOUT_S = 3600.0
LATEST = "latest"

Progress = Callable[[str], None]
_T = TypeVar("_T")


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


def restore_args_problem(at: str, generation: str | None, now: datetime) -> str | None:
    """What is wrong with `backup restore --at AT [--generation ID]`, checked before anything
    is stopped; None when both are valid."""
    from pds_aws.backup.layout import is_generation_id
    from pds_aws.backup.plan import InvalidTimestamp, parse_timestamp

    if at != LATEST:
        try:
            moment = parse_timestamp(at)
        except InvalidTimestamp as exc:
            return f"--at: {exc}"
        if moment > now:
            return (
                f"--at {at} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ}); use a past time "
                f"or `{LATEST}`"
            )
    if generation is not None and not is_generation_id(generation):
        return (
            f"--generation {generation!r} is not a generation id (like 20261129T201500Z-1a2b); "
            "list them with `pds-aws status`"
        )
    return None


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
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pds_aws.backup", *arguments],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"pds-aws-backup {' '.join(arguments)} did not finish in {timeout:.0f} s"
        ) from None
    summary = last_summary(result.stdout.splitlines())
    return ProgramResult(result.returncode, summary, result.stdout)


# -- local ------------------------------------------------------------------------------------


def local_backup_env(state: LocalState) -> dict[str, str]:
    """The local runtime's backup location as the backup program reads it."""
    from pds_aws.local.taskdef import LOCAL_AWS_CREDENTIALS

    if not state.backup_url:
        raise OperationError(
            "the local runtime reports no backup_url: its task has no backup container"
        )
    env = {"BACKUP_URL": state.backup_url, "AWS_REGION": state.region}
    if state.moto_url:
        env["AWS_ENDPOINT_URL"] = state.moto_url
        env.update(LOCAL_AWS_CREDENTIALS)
    return env


def stop_local_runtime(state: LocalState, progress: Progress, timeout: float = 180.0) -> None:
    """Ask the `local up` supervisor to stop (as `pds-aws local down`) and wait for it."""
    pid = state.supervisor_pid
    if not pid or not pid_alive(pid):
        return
    if not is_our_process(pid):
        raise OperationError(
            f"pid {pid} in the local runtime's state is not the local runtime (its command "
            "line is someone else's): the state is stale; nothing was signalled. Stop the "
            "runtime yourself if it runs, then try again"
        )
    progress(f"stopping the local runtime (pid {pid}); the sidecar syncs before it exits")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise OperationError(f"the local runtime (pid {pid}) did not stop in {timeout:.0f} s")
        time.sleep(0.5)


def local_aws_state_dir(state: LocalState) -> Path:
    """Where the local AWS keeps its journal (beside the data directory, under .local/)."""
    from pds_aws.local.paths import LocalPaths

    root = Path(state.data_dir).parent.parent
    return LocalPaths(root).aws


def with_local_aws(
    state: LocalState,
    work: Callable[[dict[str, str]], _T],
    progress: Progress,
) -> _T:
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


# -- the commands ------------------------------------------------------------------------------


def _drill(args: argparse.Namespace) -> int:
    """restore the latest backup into a scratch directory and check it

    Restore the latest backup into a scratch directory and check every database, then print
    the drill's JSON summary. Locally it runs here; on AWS as a one-off Fargate task of the
    stack's drill task definition (its log is read back)."""
    target = target_of(args)
    code: int | None
    if target.local_state is not None:
        progress("running `pds-aws-backup drill` here against the local runtime's backup")
        result = run_backup_program(["drill"], backup_env_of(target))
        code, summary = result.code, result.summary
    else:
        stack = stack_of(target)
        drill_task = stack.drill_task()
        progress(f"running the restore drill as a one-off task ({drill_task.arn})")
        code, lines = stack.run_one_off(drill_task, DRILL_CONTAINER, None, progress)
        summary = last_summary(lines)
        if summary is None:
            print("\n".join(lines[-20:]), file=sys.stderr)
    print(json.dumps(summary, indent=2) if summary else "(the drill printed no summary)")
    if code == 0 and summary and summary.get("ok"):
        print("drill passed")
        return 0
    print(f"drill FAILED (exit {code})", file=sys.stderr)
    return 1


def backup_status_of(target: Target) -> dict[str, Any]:
    """`pds-aws-backup status` of the target's backups, as JSON.

    On AWS the backup bucket's policy lets objects be read only through the VPC's S3 endpoint,
    so the read runs inside the VPC: a one-off task of the drill task definition (whose role
    may only read backups) with the command `pds-aws-backup status`, its JSON read back from
    the task's log. Locally the program runs here against the emulator."""
    from pds_aws.ops.status import read_backup_status

    if target.local_state is not None:
        return read_backup_status(backup_env_of(target))
    stack = stack_of(target)
    drill_task = stack.drill_task()
    progress("reading the backup from inside the VPC (a one-off task of the drill definition)")
    code, lines = stack.run_one_off(
        drill_task, DRILL_CONTAINER, [*BACKUP_PROGRAM, "status"], progress
    )
    summary = last_summary(lines)
    if code != 0 or summary is None:
        tail = lines[-1] if lines else "no log lines"
        raise OperationError(f"pds-aws-backup status in the VPC exited {code}: {tail}")
    return summary


def _restore(args: argparse.Namespace) -> int:
    """guided point-in-time restore of the whole PDS

    Restore the PDS to its state at a time: stop it, build a new backup generation as of --at
    and make it current, start it again. It explains each step and asks first. `--at latest`
    goes back to the newest state of the history the last restore branched from (or of
    --generation)."""
    from pds_aws.ops.output import confirm

    # Both checked before anything is read, stopped or scaled.
    problem = restore_args_problem(args.at, args.generation, datetime.now(UTC))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    target = target_of(args)
    generation = args.generation
    if args.at == LATEST and not generation:
        # "latest" undoes a restore: the newest state of the history it branched off.
        undo = backup_status_of(target).get("undo_generation")
        generation = str(undo) if undo else None
        if generation is None:
            print("no restore to undo: the current history is already the latest state")
            return 0
    print(f"Point-in-time restore of {target.name} ({target.url}):")
    for step in restore_steps(target.name, args.at, generation, target.is_local):
        print(f"  {step}")
    if not confirm("Go ahead?", args.yes):
        return 1
    command = restore_command(args.at, generation)
    code: int | None
    if target.local_state is not None:
        state = target.local_state
        stop_local_runtime(state, progress)
        result = with_local_aws(state, lambda env: run_backup_program(command[1:], env), progress)
        code, summary = result.code, result.summary
        if code == 0:
            print("restored; start the local runtime again with `make run`")
    else:
        stack = stack_of(target)
        drill_task = stack.drill_task()

        stack.scale(0, progress)
        try:
            # The drill task may only read backups; the restore runs with the service's
            # task role, which may write them.
            code, lines = stack.run_one_off(
                drill_task,
                DRILL_CONTAINER,
                command,
                progress,
                task_role_arn=stack.service_task.task_role_arn,
            )
        finally:
            stack.scale(1, progress)
        summary = last_summary(lines)
        if code != 0:
            print("\n".join(lines[-20:]), file=sys.stderr)
    print(json.dumps(summary, indent=2) if summary else "(restore-at printed no summary)")
    if code == 0 and summary and summary.get("restored_to"):
        print(f"restored as of {summary['restored_to']} (asked for {summary['at']})")
    return 0 if code == 0 else 1


def add_commands(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="restore drill and point-in-time restore",
        description="Run the backup program's restore drill, or restore the whole PDS to a "
        "point in time (a new backup generation; older history is never deleted).",
    )
    actions = parser.add_subparsers(dest="backup_action", metavar="ACTION", required=True)
    drill = add_command(actions, "drill", guarded(_drill))
    add_target_options(drill)
    restore = add_command(actions, "restore", guarded(_restore))
    restore.add_argument(
        "--at",
        required=True,
        metavar="TIMESTAMP",
        help="RFC 3339 UTC time such as 2026-11-29T20:15:00Z, or `latest`",
    )
    restore.add_argument("--generation", metavar="ID", help="restore from this generation")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_target_options(restore)
