"""`pds-aws local up|down|status`: the local runtime from the command line (`make run`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pds_aws.config import load_config
from pds_aws.errors import LocalStateError
from pds_aws.names import CONFIG_ENV, EXAMPLE_CONFIG_FILE, HEALTH_CHECK_PATH, LocalState
from pds_aws.ops.common import add_command
from pds_aws.procs import OWN_COMMAND_MARKERS, is_our_process, pid_alive

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_commands(subparsers: Subparsers) -> None:
    local = subparsers.add_parser(
        "local",
        help="run the PDS task on this machine (no AWS, no Docker)",
        description="Run the synthesized Fargate task locally: the real PDS, its backup "
        "sidecar, moto as AWS, a PLC directory, an SMTP sink and an edge proxy with the ALB's "
        "routes, all on 127.0.0.1.",
    )
    actions = local.add_subparsers(dest="local_action", metavar="ACTION", required=True)

    up = actions.add_parser("up", help="start and stay in the foreground until Ctrl-C")
    up.add_argument(
        "-c",
        "--config",
        help=f"the config file (default: ${CONFIG_ENV} or {EXAMPLE_CONFIG_FILE})",
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=Path.cwd(),
        help="project directory holding node_modules/ and .local/ (default: current)",
    )
    up.add_argument(
        "--image-tag",
        metavar="TAG",
        help="run the @atproto/pds version this PDS image tag carries instead of the config's "
        "(what `pds-aws upgrade --local` deploys; tags: src/pds_aws/versions.py)",
    )
    up.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="run the task of this synthesized template instead of synthesizing the config's "
        "(`pds-aws upgrade --local` restarts with .local/template.json: an upgrade changes only "
        "the image)",
    )
    # Tests only: a wrapper around the PDS launcher (stands in for a broken release).
    up.add_argument("--pds-launcher", type=Path, help=argparse.SUPPRESS)
    up.set_defaults(handler=_up)

    down = actions.add_parser("down", help="stop a running `local up` (ordered, final backup sync)")
    down.add_argument("--workdir", type=Path, default=Path.cwd())
    down.set_defaults(handler=_down)

    crash = add_command(actions, "crash", _crash)
    crash.add_argument("--workdir", type=Path, default=Path.cwd())

    status = actions.add_parser("status", help="is the local runtime up, and where")
    status.add_argument("--workdir", type=Path, default=Path.cwd())
    status.set_defaults(handler=_status)


def _state_file(workdir: Path) -> Path:
    from pds_aws.local.paths import LocalPaths

    return LocalPaths(workdir.resolve()).state


def ready_message(state: LocalState, state_file: Path) -> str:
    """What `local up` prints once the PDS is healthy."""
    lines = [
        "",
        f"PDS ready at {state.url}",
        f"  admin password:  {state.admin_password}   (user: admin)",
        f"  mail lands in:   {state.mail_dir}/ (one .eml file per message)",
        f"  state:           {state_file}",
        f"  logs:            {state.logs_dir}/",
        "  create a first account (handles end in .test):",
        "    pds-aws admin account create alice.test --email alice@example.com --local",
        "  stop: Ctrl-C (the backup sidecar stops last, after its final sync)",
    ]
    lines += [f"  WARNING: {w}" for w in state.warnings]
    return "\n".join(lines)


def _up(args: argparse.Namespace) -> int:
    from pds_aws.local.processes import StartError
    from pds_aws.local.runtime import LocalRuntime
    from pds_aws.local.taskdef import TaskDefinitionError

    config = load_config(args.config or os.environ.get(CONFIG_ENV) or EXAMPLE_CONFIG_FILE)
    template = None
    if args.template is not None:
        try:
            template = json.loads(args.template.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: --template {args.template}: {exc}", file=sys.stderr)
            return 2
    runtime = LocalRuntime(
        args.workdir,
        config,
        template=template,
        image_tag=args.image_tag,
        pds_launcher=args.pds_launcher,
    )
    stop_requested = False

    def request_stop(_signum: int, _frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        state = runtime.start()
    except (StartError, TaskDefinitionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; stopped", file=sys.stderr)
        return 130
    print(ready_message(state, runtime.paths.state), flush=True)
    signal.signal(signal.SIGINT, request_stop)
    code = 0
    while not stop_requested:
        exited = runtime.exited()
        if exited:
            print(
                f"error: {', '.join(exited)} stopped on its own (logs in {state.logs_dir}); "
                f"stopping the task as ECS would",
                file=sys.stderr,
            )
            code = 1
            break
        time.sleep(0.5)
    print("stopping (backup sidecar last, after its final sync)...", file=sys.stderr, flush=True)
    runtime.stop()
    print("stopped", file=sys.stderr)
    sys.unraisablehook = _ignore_broken_pipe
    return code


def _ignore_broken_pipe(unraisable: Any) -> None:
    # Ctrl-C reaches the whole process group, the CDK's Node kernel (left from synthesis)
    # included; jsii's exit hook then fails to close the pipe to it. Nothing is lost.
    if isinstance(unraisable.exc_value, BrokenPipeError):
        return
    sys.__unraisablehook__(unraisable)


def _read_state(workdir: Path) -> LocalState | None:
    """The running runtime's state, or None when there is no (readable) state file."""
    try:
        return LocalState.read(_state_file(workdir))
    except LocalStateError:
        return None


def _running(workdir: Path) -> LocalState | None:
    """The state of the running runtime; None when there is none or its supervisor is gone."""
    state = _read_state(workdir)
    if state is None or not state.supervisor_pid or not pid_alive(state.supervisor_pid):
        return None
    return state


# The local task's processes: ours by module or script name, or the binaries we start.
_CHILD_MARKERS = (*OWN_COMMAND_MARKERS, "pds_launcher.cjs", "plc_launcher.cjs", "caddy")
_NOT_OURS = (
    "error: pid {pid} in .local/state.json is not the local runtime (its command line is "
    "another program's): the state is stale and nothing was signalled; remove "
    ".local/state.json if no local runtime runs"
)


def _signallable(workdir: Path, *, code_if_not_running: int) -> LocalState | int:
    """The running runtime whose supervisor is ours to signal; else, once it has said why,
    the exit code."""
    state = _running(workdir)
    if state is None:
        print("the local runtime is not running", file=sys.stderr)
        return code_if_not_running
    if not is_our_process(state.supervisor_pid):
        print(_NOT_OURS.format(pid=state.supervisor_pid), file=sys.stderr)
        return 1
    return state


def _down(args: argparse.Namespace) -> int:
    state = _signallable(args.workdir, code_if_not_running=0)
    if isinstance(state, int):
        return state
    pid = state.supervisor_pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if pid_alive(pid):
        print(f"error: pid {pid} is still running after 120 s; see .local/logs/", file=sys.stderr)
        return 1
    print("stopped")
    return 0


def _crash(args: argparse.Namespace) -> int:
    """SIGKILL every process of the running task at once (try the restore path)

    Simulate a crashed task: SIGKILL the `local up` supervisor and every process it started
    (from .local/state.json), with no final sync. The next `make run` restores from the local
    backup, as a replacement task does on AWS."""
    state = _signallable(args.workdir, code_if_not_running=1)
    if isinstance(state, int):
        return state
    # The supervisor first, so it cannot start an ordered stop; then each process group
    # (each process was started in a session of its own: Litestream goes with the sidecar).
    os.kill(state.supervisor_pid, signal.SIGKILL)
    for child in state.pids.values():
        if not is_our_process(child, _CHILD_MARKERS):
            continue  # gone, or its pid was reused by a process that is not ours
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
    _state_file(args.workdir).unlink(missing_ok=True)
    print("crashed: every process of the local task got SIGKILL; `make run` restores it")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = _running(args.workdir)
    if state is None:
        print("not running (start it with `make run`)")
        return 1
    pid = state.supervisor_pid
    try:
        with urllib.request.urlopen(state.url + HEALTH_CHECK_PATH, timeout=5) as response:
            health = json.loads(response.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"running (pid {pid}) but {state.url} does not answer: {exc}")
        return 1
    print(f"running at {state.url} (PDS {health.get('version', '?')})")
    for name, child in state.pids.items():
        print(f"  {name:<8} pid {child:<8} {'up' if pid_alive(child) else 'EXITED'}")
    return 0
