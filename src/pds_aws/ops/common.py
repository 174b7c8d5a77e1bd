"""What every operator command shares: the target options, resolving them, and error reporting.

Every command that talks to a PDS takes the same target options (`--local`, `--stack`, `-c`);
see pds_aws.ops.target. Handlers return the process exit code: 0 done, 1 the operation or a
check failed, 2 bad input or an unreachable target.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pds_aws.config import Config, load_config
from pds_aws.errors import ConfigError, PdsAwsError
from pds_aws.names import CONFIG_ENV, EXAMPLE_CONFIG_FILE, STATE_FILE
from pds_aws.ops.target import Target, TargetChoice, TargetError, resolve_target

if TYPE_CHECKING:
    from pds_aws.ops.ecs import Stack

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]


def add_command(subparsers: Subparsers, name: str, handler: Handler) -> argparse.ArgumentParser:
    """Register the command `name`, described by its handler's docstring (a command is described
    once, where it is done): its summary line is the command's line in the list of commands, the
    paragraphs after the blank line its description."""
    summary, _, description = (inspect.getdoc(handler) or "").partition("\n\n")
    parser = subparsers.add_parser(name, help=summary, description=description or None)
    parser.set_defaults(handler=handler)
    return parser


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target (one of)")
    group.add_argument(
        "--local",
        action="store_true",
        help="the local runtime started by `make run` (reads --state)",
    )
    group.add_argument(
        "--state",
        type=Path,
        default=STATE_FILE,
        help=f"the local runtime's state file (default: {STATE_FILE})",
    )
    group.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed CloudFormation stack: endpoint from its outputs, admin password "
        "from Secrets Manager",
    )
    group.add_argument(
        "-c",
        "--config",
        metavar="CONFIG",
        help=f"a config file: its [aws] stack_name and region (default: ${CONFIG_ENV})",
    )
    group.add_argument("--profile", help="AWS profile (default: your usual AWS profile)")
    group.add_argument("--region", help="AWS region (default: the config's or your profile's)")


def target_of(args: argparse.Namespace) -> Target:
    return resolve_target(
        TargetChoice(
            local=args.local,
            state_file=args.state,
            stack_name=args.stack,
            config_path=args.config,
            profile=args.profile,
            region=args.region,
        )
    )


def config_of(args: argparse.Namespace) -> Config:
    """The config named by -c or $PDS_AWS_CONFIG. Only the local runtime falls back to the
    example: a deployed stack's settings never silently come from pds.example.toml."""
    path = args.config or os.environ.get(CONFIG_ENV)
    if not path:
        if not args.local:
            raise TargetError(
                f"no config: this command reads the deployed stack's config; pass -c CONFIG "
                f"(e.g. -c pds.toml) or set ${CONFIG_ENV}; relays given as arguments need none"
            )
        path = EXAMPLE_CONFIG_FILE
    return load_config(path)


def guarded(handler: Handler) -> Handler:
    """Failures of the PDS, AWS or the backup program (ours and botocore's) are reported in
    one line with exit code 1; anything else is a bug and keeps its traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ConfigError:
            raise  # the CLI prints these with exit code 2
        except (PdsAwsError, ClientError, BotoCoreError) as exc:
            return fail(str(exc))

    return run


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def stack_of(target: Target) -> Stack:
    """The deployed stack's ECS side (for status, backups, shell, logs)."""
    from pds_aws.ops.ecs import Stack
    from pds_aws.ops.target import aws_session

    if target.stack is None:
        raise TargetError(
            f"stack {target.name} has no ClusterName/ServiceName outputs; deploy the current "
            f"version (`make deploy`)"
        )
    session = aws_session(target.stack.profile, target.stack.region)
    return Stack.read(session, target.stack)


def backup_env_of(target: Target) -> dict[str, str]:
    from pds_aws.ops.backup_commands import local_backup_env

    if target.local_state is not None:
        return local_backup_env(target.local_state)
    return dict(stack_of(target).backup_env())
