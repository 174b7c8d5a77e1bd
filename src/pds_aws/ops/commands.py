"""`pds-aws` operator subcommands: admin, request-crawl, status, backup, smoke, shell, logs.

Every command that talks to a PDS takes the same target options (`--local`, `--stack`,
`-c`); see pds_aws.ops.target. Handlers return the process exit code: 0 done, 1 the
operation or a check failed, 2 bad input or an unreachable target.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pds_aws.config import DEFAULT_CONFIG_FILE, Config, load_config
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
                print(f"new password for {args.account}: {password}")
        elif action == "update":
            if not (args.email or args.handle):
                return fail("nothing to update: pass --email and/or --handle", 2)
            admin.update_account(xrpc, did, email=args.email, handle=args.handle)
        result = {"account": args.account, "did": did, "done": action}
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{action}: {args.account} ({did}) done")
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
        parser.set_defaults(handler=_admin, admin_action=name)
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
    create_invites.set_defaults(handler=_admin, admin_action="invites")


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
    parser.set_defaults(handler=_request_crawl)


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
    parser.set_defaults(handler=_smoke)


# -- registration ------------------------------------------------------------------------


def add_commands(subparsers: Subparsers) -> None:
    """Register the operator subcommands on the `pds-aws` parser."""
    _add_admin(subparsers)
    _add_request_crawl(subparsers)
    _add_smoke(subparsers)
