"""`pds-aws` operator subcommands: admin, request-crawl, status, backup, smoke, shell, logs.

This module registers them (`add_commands`) and holds the small ones (request-crawl, smoke,
status); admin, backup, shell and logs have a module each. The target options every command
shares, and the error reporting, are in pds_aws.ops.common.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pds_aws.ops.common import (
    add_command,
    add_target_options,
    config_of,
    fail,
    guarded,
    target_of,
)

if TYPE_CHECKING:
    import argparse

    from pds_aws.ops.common import Subparsers


# -- request-crawl -----------------------------------------------------------------------


def _request_crawl(args: argparse.Namespace) -> int:
    """ask relays to crawl (index) this PDS

    Send com.atproto.sync.requestCrawl for this PDS's hostname to each relay (default: [pds]
    crawlers of the config)."""
    from pds_aws.ops.crawl import request_crawl

    relays = list(args.relays) or list(config_of(args).pds.crawlers)
    target = target_of(args)
    hostname = args.hostname or target.hostname
    results = request_crawl(relays, hostname)
    for result in results:
        print(f"{'OK  ' if result.ok else 'FAIL'} {result.relay}: {result.detail}")
    return 0 if all(r.ok for r in results) else 1


def _add_request_crawl(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "request-crawl", guarded(_request_crawl))
    parser.add_argument("relays", nargs="*", metavar="RELAY", help="relay URL or host")
    parser.add_argument("--hostname", help="the PDS hostname to announce (default: the target's)")
    add_target_options(parser)


# -- smoke -------------------------------------------------------------------------------


def _smoke(args: argparse.Namespace) -> int:
    """check a live PDS through its edge (routes, websocket, read and write)

    Check a PDS at URL as the network sees it: home page, robots.txt from the edge, health,
    both OAuth documents, atproto-did 404 for an unknown host, describeServer, listRepos, an
    admin endpoint refusing anonymous calls, the first subscribeRepos frame over a websocket and
    403 outside the allow-list. With --handle/--password also the read path and the write path
    (a post with an image, read back and deleted). With a target (--local, --stack or -c), every
    request carries its rate-limit bypass key. One PASS/FAIL line per check; exit 1 if any
    fails."""
    from pds_aws.ops.smoke import probe_with_key, run_checks

    if bool(args.handle) != bool(args.password):
        return fail("pass both --handle and --password (or neither)", 2)
    # With a target named, the checks carry its rate-limit bypass key (from the local state or
    # Secrets Manager, never from the command line): repeated runs are not throttled.
    key = (
        target_of(args).rate_limit_bypass_key if (args.local or args.stack or args.config) else None
    )
    probe = probe_with_key(args.url, key, handle=args.handle, password=args.password)
    results = run_checks(probe)
    for result in results:
        print(result.line(), flush=True)
    failed = [r for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _add_smoke(subparsers: Subparsers) -> None:
    parser = add_command(subparsers, "smoke", guarded(_smoke))
    parser.add_argument("url", help="the PDS's public URL, e.g. https://pds.example.com")
    parser.add_argument("--handle", help="an account to test reading and writing with")
    parser.add_argument("--password", help="that account's password (an app password works)")
    add_target_options(parser)


# -- status ------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    """health, version, accounts and backup freshness

    Show the PDS's health and version, its account count and the backup: per database the
    newest replicated change (from `pds-aws-backup status`) and how far the backup is behind the
    live repositories. Exit 1 when the PDS is unhealthy, no backup exists, an account is missing
    from it, or it is behind by more than --max-backup-age."""
    from datetime import UTC, datetime

    from botocore.exceptions import BotoCoreError, ClientError

    from pds_aws.errors import PdsAwsError
    from pds_aws.ops.admin import iter_repos
    from pds_aws.ops.backup_commands import backup_status_of
    from pds_aws.ops.status import (
        Status,
        backup_lag,
        judge,
        parse_duration,
        report_lines,
    )
    from pds_aws.ops.xrpc import Xrpc, XrpcError

    try:
        max_age = parse_duration(args.max_backup_age)
    except ValueError as exc:
        return fail(f"--max-backup-age: {exc}", 2)
    target = target_of(args)
    status = Status(url=target.url)
    xrpc = Xrpc(target.url, rate_limit_bypass_key=target.rate_limit_bypass_key)
    repos: list[dict[str, Any]] = []
    try:
        status.version = str(xrpc.query("_health").get("version", "unknown"))
        repos = list(iter_repos(xrpc))
        status.accounts = len(repos)
    except XrpcError as exc:
        status.health_error = str(exc)
    try:
        status.backup = backup_status_of(target)
    except (PdsAwsError, ClientError, BotoCoreError) as exc:  # reported, not raised
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
    parser = add_command(subparsers, "status", guarded(_status))
    parser.add_argument(
        "--max-backup-age",
        default="5m",
        metavar="DURATION",
        help="largest acceptable backup lag, e.g. 90s, 15m, 2h (default: 5m)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(parser)


# -- registration ------------------------------------------------------------------------


def add_commands(subparsers: Subparsers) -> None:
    """Register the operator subcommands on the `pds-aws` parser."""
    from pds_aws.ops import admin_commands, backup_commands, task_commands, upgrade_commands

    admin_commands.add_commands(subparsers)
    _add_request_crawl(subparsers)
    _add_status(subparsers)
    backup_commands.add_commands(subparsers)
    _add_smoke(subparsers)
    task_commands.add_commands(subparsers)
    upgrade_commands.add_commands(subparsers)
