"""`pds-aws shell` and `pds-aws logs`: the running task of a deployed stack."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pds_aws.names import PDS_CONTAINER
from pds_aws.ops.common import add_command, add_target_options, fail, guarded, stack_of, target_of

if TYPE_CHECKING:
    from pds_aws.ops.common import Subparsers


def _shell(args: argparse.Namespace) -> int:
    """ECS Exec into the PDS container (needs the Session Manager plugin)

    Open a terminal in the running task's container with ECS Exec. The session is started
    through the ECS API (boto3); AWS's Session Manager plugin (session-manager-plugin) is needed
    only to attach this terminal to it. No other pds-aws command needs a shell: admin tasks go
    through the PDS's admin API."""
    from pds_aws.ops.ecs import attach_terminal, exec_session, session_manager_plugin

    target = target_of(args)
    if target.is_local:
        data_dir = target.local_state.data_dir if target.local_state else ""
        return fail(f"locally there is no container: the PDS data is in {data_dir}", 2)
    stack = stack_of(target)
    plugin = session_manager_plugin()
    if plugin is None:
        return fail(
            "an interactive ECS Exec terminal needs AWS's Session Manager plugin "
            "(session-manager-plugin on PATH); install it from the AWS documentation. "
            "Everything else in pds-aws works without it.",
            2,
        )
    session = exec_session(stack, args.container, args.command)
    return attach_terminal(stack, session, plugin)


def _logs(args: argparse.Namespace) -> int:
    """print or follow the containers' CloudWatch logs

    Print the service's container logs from CloudWatch Logs, oldest first; --follow keeps
    polling (Ctrl-C to stop)."""
    from pds_aws.ops.ecs import follow_logs
    from pds_aws.ops.status import parse_duration

    target = target_of(args)
    if target.local_state is not None:
        return fail(f"local logs are files: see {target.local_state.logs_dir}/", 2)
    stack = stack_of(target)
    groups = {
        name: facts.log_group
        for name, facts in stack.service_task.containers.items()
        if facts.log_group and (not args.container or name in args.container)
    }
    if not groups:
        return fail("no CloudWatch log group found for those containers", 2)
    try:
        follow_logs(
            stack.session,
            groups,
            since_s=parse_duration(args.since),
            follow=args.follow,
            out=lambda line: print(line, flush=True),
        )
    except KeyboardInterrupt:
        return 0
    return 0


def add_commands(subparsers: Subparsers) -> None:
    shell = add_command(subparsers, "shell", guarded(_shell))
    shell.add_argument(
        "--container", default=PDS_CONTAINER, help=f"container name (default: {PDS_CONTAINER})"
    )
    shell.add_argument("--command", default="/bin/sh", help="command to run (default: /bin/sh)")
    add_target_options(shell)

    logs = add_command(subparsers, "logs", guarded(_logs))
    logs.add_argument(
        "--container",
        action="append",
        help="only this container (pds, backup; repeatable; default: all)",
    )
    logs.add_argument("--since", default="10m", help="how far back, e.g. 10m, 2h (default: 10m)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following new events")
    add_target_options(logs)
