"""`pds-aws` operator subcommands: admin, request-crawl, status, backup, smoke, shell, logs.

Every command that talks to a PDS takes the same target options (`--local`, `--stack`,
`-c`); see pds_aws.ops.target. Handlers return the process exit code: 0 done, 1 the
operation or a check failed, 2 bad input or an unreachable target.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pds_aws.config import DEFAULT_CONFIG_FILE, Config, ConfigError, load_config
from pds_aws.ops.target import (
    CONFIG_ENV,
    DEFAULT_STATE_FILE,
    Target,
    TargetChoice,
    resolve_target,
)

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
ACCOUNT_COLUMNS = ("handle", "did", "email", "status", "created")


# -- target ------------------------------------------------------------------------------


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
        default=DEFAULT_STATE_FILE,
        help=f"the local runtime's state file (default: {DEFAULT_STATE_FILE})",
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
    return load_config(args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def _operational(exc: Exception) -> bool:
    """Failures of the PDS, AWS or the backup program: reported in one line, no traceback."""
    from pds_aws.ops.ecs import StackOperationError
    from pds_aws.ops.xrpc import XrpcError

    known = (StackOperationError, XrpcError, RuntimeError, subprocess.TimeoutExpired, OSError)
    return isinstance(exc, known) or type(exc).__module__.startswith(("botocore", "boto3"))


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ConfigError:
            raise  # the CLI prints these with exit code 2
        except Exception as exc:
            if not _operational(exc):
                raise
            return fail(str(exc))

    return run


def fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# -- admin -------------------------------------------------------------------------------


def _xrpc(target: Target) -> Any:
    from pds_aws.ops.xrpc import Xrpc

    return Xrpc(target.url, target.admin_password)


def _admin(args: argparse.Namespace) -> int:
    """Run one admin action; XRPC errors become a one-line message and exit 1."""
    from pds_aws.ops import admin
    from pds_aws.ops.output import confirm, emit
    from pds_aws.ops.xrpc import XrpcError

    target = target_of(args)
    xrpc = _xrpc(target)
    action: str = args.admin_action
    try:
        if action == "list":
            accounts = admin.list_accounts(xrpc)
            emit([a.row() for a in accounts], ACCOUNT_COLUMNS, args.json)
            return 0
        if action == "create":
            password = args.password or admin.new_password()
            created = admin.create_account(
                xrpc,
                handle=args.handle,
                email=args.email,
                password=password,
                invite_code=args.invite_code,
            )
            row = {**created, "password": password if not args.password else "(as given)"}
            emit([row], ("handle", "did", "password"), args.json)
            return 0
        if action == "invites":
            codes = admin.create_invites(
                xrpc, count=args.count, uses=args.uses, for_account=args.for_account
            )
            emit([{"code": c, "uses": args.uses} for c in codes], ("code", "uses"), args.json)
            return 0
        did = admin.resolve_did(xrpc, args.account)
        result: dict[str, str] = {"account": args.account, "did": did, "done": action}
        if action == "delete":
            question = f"Delete account {args.account} ({did}) and all its data on {target.name}?"
            if not confirm(question, args.yes):
                return 1
            admin.delete_account(xrpc, did)
        elif action == "takedown":
            question = f"Take down account {args.account} ({did}) on {target.name}?"
            if not confirm(question, args.yes):
                return 1
            admin.set_takedown(xrpc, did, applied=True)
        elif action == "untakedown":
            admin.set_takedown(xrpc, did, applied=False)
        elif action == "reset-password":
            password = args.password or admin.new_password()
            admin.reset_password(xrpc, did, password)
            if not args.password:
                result["password"] = password
        elif action == "update":
            if not (args.email or args.handle):
                return fail("nothing to update: pass --email and/or --handle", 2)
            admin.update_account(xrpc, did, email=args.email, handle=args.handle)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{action}: {args.account} ({did}) done")
            if "password" in result:
                print(f"new password (shown once): {result['password']}")
        return 0
    except XrpcError as exc:
        return fail(str(exc))


def _add_admin(subparsers: Subparsers) -> None:
    admin_parser = subparsers.add_parser(
        "admin",
        help="accounts and invite codes (through the PDS's admin API)",
        description="Manage accounts and invite codes through the PDS's own XRPC admin "
        "endpoints with the admin password; no shell in the container is needed.",
    )
    areas = admin_parser.add_subparsers(dest="admin_area", metavar="AREA", required=True)
    account = areas.add_parser("account", help="list, create, delete, take down, update accounts")
    actions = account.add_subparsers(dest="admin_action", metavar="ACTION", required=True)

    def action(name: str, help_text: str, *, takes_account: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        if takes_account:
            parser.add_argument("account", help="handle (alice.pds.example.com) or DID")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        add_target_options(parser)
        parser.set_defaults(handler=_guarded(_admin), admin_action=name)
        return parser

    action("list", "list every account with handle, DID, e-mail and status", takes_account=False)
    create = action(
        "create", "create an account (mints a one-use invite if needed)", takes_account=False
    )
    create.add_argument("handle", help="the new handle, e.g. alice.pds.example.com")
    create.add_argument("--email", required=True, help="the account's e-mail address")
    create.add_argument("--password", help="initial password (default: a random one, printed once)")
    create.add_argument("--invite-code", help="use this invite code instead of minting one")
    delete = action("delete", "delete an account and its repository (asks first)")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    takedown = action("takedown", "take an account down: it stops being served (asks first)")
    takedown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    action("untakedown", "reverse a takedown")
    reset = action("reset-password", "set a new password (random unless --password)")
    reset.add_argument("--password", help="the new password (default: a random one, printed once)")
    update = action("update", "change an account's e-mail and/or handle")
    update.add_argument("--email", help="the new e-mail address")
    update.add_argument("--handle", help="the new handle")

    invites = areas.add_parser("invites", help="invite codes")
    invite_actions = invites.add_subparsers(dest="invite_action", metavar="ACTION", required=True)
    create_invites = invite_actions.add_parser(
        "create", help="create invite codes", description="Create invite codes."
    )
    create_invites.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    create_invites.add_argument(
        "--uses", type=int, default=1, help="sign-ups each code allows (default 1)"
    )
    create_invites.add_argument("--for-account", help="DID that owns the codes (default: admin)")
    create_invites.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(create_invites)
    create_invites.set_defaults(handler=_guarded(_admin), admin_action="invites")


# -- request-crawl -----------------------------------------------------------------------


def _request_crawl(args: argparse.Namespace) -> int:
    from pds_aws.ops.crawl import request_crawl

    target = target_of(args)
    relays = list(args.relays) or list(config_of(args).pds.crawlers)
    hostname = args.hostname or target.hostname
    results = request_crawl(relays, hostname)
    for result in results:
        print(f"{'OK  ' if result.ok else 'FAIL'} {result.relay}: {result.detail}")
    return 0 if all(r.ok for r in results) else 1


def _add_request_crawl(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "request-crawl",
        help="ask relays to crawl (index) this PDS",
        description="Send com.atproto.sync.requestCrawl for this PDS's hostname to each relay "
        "(default: [pds] crawlers of the config).",
    )
    parser.add_argument("relays", nargs="*", metavar="RELAY", help="relay URL or host")
    parser.add_argument("--hostname", help="the PDS hostname to announce (default: the target's)")
    add_target_options(parser)
    parser.set_defaults(handler=_guarded(_request_crawl))


# -- smoke -------------------------------------------------------------------------------


def _smoke(args: argparse.Namespace) -> int:
    from pds_aws.ops.smoke import Probe, run_checks

    if bool(args.handle) != bool(args.password):
        return fail("pass both --handle and --password (or neither)", 2)
    probe = Probe(args.url, handle=args.handle, password=args.password)
    results = run_checks(probe)
    for result in results:
        print(result.line(), flush=True)
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _add_smoke(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="check a live PDS through its edge (routes, websocket, read and write)",
        description="Check a PDS at URL as the network sees it: home page, robots.txt from "
        "the edge, health, both OAuth documents, atproto-did 404 for an unknown host, "
        "describeServer, listRepos, an admin endpoint refusing anonymous calls, the first "
        "subscribeRepos frame over a websocket and 403 outside the allow-list. With "
        "--handle/--password also the read path and the write path (a post with an image, "
        "read back and deleted). One PASS/FAIL line per check; exit 1 if any fails.",
    )
    parser.add_argument("url", help="the PDS's public URL, e.g. https://pds.example.com")
    parser.add_argument("--handle", help="an account to test reading and writing with")
    parser.add_argument("--password", help="that account's password (an app password works)")
    parser.set_defaults(handler=_guarded(_smoke))


# -- status ------------------------------------------------------------------------------


def _stack_of(target: Target) -> Any:
    """The deployed stack's ECS side (for status, backups, shell, logs)."""
    from pds_aws.ops.ecs import Stack
    from pds_aws.ops.target import TargetError, aws_session

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
    return dict(_stack_of(target).backup_env())


def _status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pds_aws.ops.admin import iter_repos
    from pds_aws.ops.status import (
        Status,
        backup_lag,
        judge,
        parse_duration,
        read_backup_status,
        report_lines,
    )
    from pds_aws.ops.xrpc import Xrpc, XrpcError

    try:
        max_age = parse_duration(args.max_backup_age)
    except ValueError as exc:
        return fail(f"--max-backup-age: {exc}", 2)
    target = target_of(args)
    status = Status(url=target.url)
    xrpc = Xrpc(target.url)
    repos: list[dict[str, Any]] = []
    try:
        status.version = str(xrpc.query("_health").get("version", "unknown"))
        repos = list(iter_repos(xrpc))
        status.accounts = len(repos)
    except XrpcError as exc:
        status.health_error = str(exc)
    try:
        status.backup = read_backup_status(backup_env_of(target))
    except Exception as exc:  # any failure to read the backup is reported, not raised
        status.backup_error = str(exc)
    if status.backup is not None and status.health_error is None:
        status.lag = backup_lag(repos, status.backup.get("databases") or {})
    now = datetime.now(UTC)
    status.problems = judge(status, max_age, now)
    if args.json:
        print(json.dumps(status.as_dict(), indent=2))
    else:
        print("\n".join(report_lines(status, now)))
    return 1 if status.problems else 0


def _add_status(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="health, version, accounts and backup freshness",
        description="Show the PDS's health and version, its account count and the backup: "
        "per database the newest replicated change (from `pds-aws-backup status`) and how "
        "far the backup is behind the live repositories. Exit 1 when the PDS is unhealthy, "
        "no backup exists, an account is missing from it, or it is behind by more than "
        "--max-backup-age.",
    )
    parser.add_argument(
        "--max-backup-age",
        default="5m",
        metavar="DURATION",
        help="largest acceptable backup lag, e.g. 90s, 15m, 2h (default: 5m)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(parser)
    parser.set_defaults(handler=_guarded(_status))


# -- backup ------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _drill(args: argparse.Namespace) -> int:
    from pds_aws.ops import backup_commands as backup
    from pds_aws.ops.ecs import DRILL_CONTAINER

    target = target_of(args)
    if target.local_state is not None:
        _progress("running `pds-aws-backup drill` here against the local runtime's backup")
        result = backup.run_backup_program(["drill"], backup_env_of(target))
        code, summary = result.code, result.summary
    else:
        stack = _stack_of(target)
        drill_task = stack.drill_task()
        _progress(f"running the restore drill as a one-off task ({drill_task.arn})")
        code, lines = stack.run_one_off(drill_task, DRILL_CONTAINER, None, _progress)
        summary = backup.last_summary(lines)
        if summary is None:
            print("\n".join(lines[-20:]), file=sys.stderr)
    print(json.dumps(summary, indent=2) if summary else "(the drill printed no summary)")
    if code == 0 and summary and summary.get("ok"):
        print("drill passed")
        return 0
    print(f"drill FAILED (exit {code})", file=sys.stderr)
    return 1


def _restore(args: argparse.Namespace) -> int:
    from pds_aws.ops import backup_commands as backup
    from pds_aws.ops.output import confirm

    target = target_of(args)
    generation = args.generation
    if args.at == backup.LATEST and not generation:
        # "latest" undoes a restore: the newest state of the history it branched off.
        generation = backup.latest_generation(backup_env_of(target))
        if generation is None:
            print("no restore to undo: the current history is already the latest state")
            return 0
    print(f"Point-in-time restore of {target.name} ({target.url}):")
    for step in backup.restore_steps(target.name, args.at, generation, target.is_local):
        print(f"  {step}")
    if not confirm("Go ahead?", args.yes):
        return 1
    command = backup.restore_command(args.at, generation)
    if target.local_state is not None:
        state = target.local_state
        backup.stop_local_runtime(state, _progress)
        result = backup.with_local_aws(
            state, lambda env: backup.run_backup_program(command[1:], env), _progress
        )
        code, summary = result.code, result.summary
        if code == 0:
            print("restored; start the local runtime again with `make run`")
    else:
        stack = _stack_of(target)
        drill_task = stack.drill_task()
        from pds_aws.ops.ecs import DRILL_CONTAINER

        stack.scale(0, _progress)
        try:
            # The drill task may only read backups; the restore runs with the service's
            # task role, which may write them.
            code, lines = stack.run_one_off(
                drill_task,
                DRILL_CONTAINER,
                command,
                _progress,
                task_role_arn=stack.service_task.task_role_arn,
            )
        finally:
            stack.scale(1, _progress)
        summary = backup.last_summary(lines)
        if code != 0:
            print("\n".join(lines[-20:]), file=sys.stderr)
    print(json.dumps(summary, indent=2) if summary else "(restore-at printed no summary)")
    return 0 if code == 0 else 1


def _add_backup(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="restore drill and point-in-time restore",
        description="Run the backup program's restore drill, or restore the whole PDS to a "
        "point in time (a new backup generation; older history is never deleted).",
    )
    actions = parser.add_subparsers(dest="backup_action", metavar="ACTION", required=True)
    drill = actions.add_parser(
        "drill",
        help="restore the latest backup into a scratch directory and check it",
        description="Restore the latest backup into a scratch directory and check every "
        "database, then print the drill's JSON summary. Locally it runs here; on AWS as a "
        "one-off Fargate task of the stack's drill task definition (its log is read back).",
    )
    add_target_options(drill)
    drill.set_defaults(handler=_guarded(_drill))
    restore = actions.add_parser(
        "restore",
        help="guided point-in-time restore of the whole PDS",
        description="Restore the PDS to its state at a time: stop it, build a new backup "
        "generation as of --at and make it current, start it again. It explains each step and "
        "asks first. `--at latest` goes back to the newest state of the history the last "
        "restore branched from (or of --generation).",
    )
    restore.add_argument(
        "--at",
        required=True,
        metavar="TIMESTAMP",
        help="RFC 3339 UTC time such as 2026-11-29T20:15:00Z, or `latest`",
    )
    restore.add_argument("--generation", metavar="ID", help="restore from this generation")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_target_options(restore)
    restore.set_defaults(handler=_guarded(_restore))


# -- shell and logs ----------------------------------------------------------------------


def _shell(args: argparse.Namespace) -> int:
    from pds_aws.ops.ecs import attach_terminal, exec_session, session_manager_plugin

    target = target_of(args)
    if target.is_local:
        state = target.local_state or {}
        return fail(f"locally there is no container: the PDS data is in {state.get('data_dir')}", 2)
    stack = _stack_of(target)
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
    from pds_aws.ops.ecs import follow_logs
    from pds_aws.ops.status import parse_duration

    target = target_of(args)
    if target.local_state is not None:
        return fail(f"local logs are files: see {target.local_state.get('logs_dir')}/", 2)
    stack = _stack_of(target)
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


def _add_shell_and_logs(subparsers: Subparsers) -> None:
    shell = subparsers.add_parser(
        "shell",
        help="ECS Exec into the PDS container (needs the Session Manager plugin)",
        description="Open a terminal in the running task's container with ECS Exec. The "
        "session is started through the ECS API (boto3); AWS's Session Manager plugin "
        "(session-manager-plugin) is needed only to attach this terminal to it. No other "
        "pds-aws command needs a shell: admin tasks go through the PDS's admin API.",
    )
    shell.add_argument("--container", default="pds", help="container name (default: pds)")
    shell.add_argument("--command", default="/bin/sh", help="command to run (default: /bin/sh)")
    add_target_options(shell)
    shell.set_defaults(handler=_guarded(_shell))

    logs = subparsers.add_parser(
        "logs",
        help="print or follow the containers' CloudWatch logs",
        description="Print the service's container logs from CloudWatch Logs, oldest first; "
        "--follow keeps polling (Ctrl-C to stop).",
    )
    logs.add_argument(
        "--container",
        action="append",
        help="only this container (pds, backup; repeatable; default: all)",
    )
    logs.add_argument("--since", default="10m", help="how far back, e.g. 10m, 2h (default: 10m)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following new events")
    add_target_options(logs)
    logs.set_defaults(handler=_guarded(_logs))


# -- registration ------------------------------------------------------------------------


def add_commands(subparsers: Subparsers) -> None:
    """Register the operator subcommands on the `pds-aws` parser."""
    _add_admin(subparsers)
    _add_request_crawl(subparsers)
    _add_status(subparsers)
    _add_backup(subparsers)
    _add_smoke(subparsers)
    _add_shell_and_logs(subparsers)
