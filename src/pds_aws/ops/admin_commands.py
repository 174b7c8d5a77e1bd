"""`pds-aws admin`: accounts and invite codes through the PDS's own admin API, one handler each.

XRPC errors (`XrpcError`, one of ours) become a one-line message and exit 1 (`guarded`).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from pds_aws.ops.common import add_target_options, fail, guarded, target_of

if TYPE_CHECKING:
    from pds_aws.ops.common import Handler, Subparsers
    from pds_aws.ops.target import Target
    from pds_aws.ops.xrpc import Xrpc


def _connect(args: argparse.Namespace) -> tuple[Target, Xrpc]:
    from pds_aws.ops.xrpc import Xrpc

    target = target_of(args)
    return target, Xrpc(
        target.url, target.admin_password, rate_limit_bypass_key=target.rate_limit_bypass_key
    )


def _account(args: argparse.Namespace) -> tuple[Target, Xrpc, str]:
    """The target, its admin client and the DID of the account the command names."""
    from pds_aws.ops import admin

    target, xrpc = _connect(args)
    return target, xrpc, admin.resolve_did(xrpc, args.account)


def _done(args: argparse.Namespace, did: str, password: str | None = None) -> int:
    """Report an action on one account; a generated password is shown once."""
    result = {"account": args.account, "did": did, "done": args.admin_action}
    if password is not None:
        result["password"] = password
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.admin_action}: {args.account} ({did}) done")
        if password is not None:
            print(f"new password (shown once): {password}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin
    from pds_aws.ops.output import emit

    _, xrpc = _connect(args)
    accounts = admin.list_accounts(xrpc)
    emit([a.row() for a in accounts], admin.ACCOUNT_COLUMNS, args.json)
    return 0


def _create(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin
    from pds_aws.ops.output import emit

    _, xrpc = _connect(args)
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


def _create_invites(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin
    from pds_aws.ops.output import emit

    _, xrpc = _connect(args)
    codes = admin.create_invites(
        xrpc, count=args.count, uses=args.uses, for_account=args.for_account
    )
    emit([{"code": c, "uses": args.uses} for c in codes], ("code", "uses"), args.json)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin
    from pds_aws.ops.output import confirm

    target, xrpc, did = _account(args)
    question = f"Delete account {args.account} ({did}) and all its data on {target.name}?"
    if not confirm(question, args.yes):
        return 1
    admin.delete_account(xrpc, did)
    return _done(args, did)


def _takedown(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin
    from pds_aws.ops.output import confirm

    target, xrpc, did = _account(args)
    if not confirm(f"Take down account {args.account} ({did}) on {target.name}?", args.yes):
        return 1
    admin.set_takedown(xrpc, did, applied=True)
    return _done(args, did)


def _untakedown(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin

    _, xrpc, did = _account(args)
    admin.set_takedown(xrpc, did, applied=False)
    return _done(args, did)


def _reset_password(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin

    _, xrpc, did = _account(args)
    password = args.password or admin.new_password()
    admin.reset_password(xrpc, did, password)
    return _done(args, did, None if args.password else password)


def _update(args: argparse.Namespace) -> int:
    from pds_aws.ops import admin

    _, xrpc, did = _account(args)
    if not (args.email or args.handle):
        return fail("nothing to update: pass --email and/or --handle", 2)
    admin.update_account(xrpc, did, email=args.email, handle=args.handle)
    return _done(args, did)


def add_commands(subparsers: Subparsers) -> None:
    admin_parser = subparsers.add_parser(
        "admin",
        help="accounts and invite codes (through the PDS's admin API)",
        description="Manage accounts and invite codes through the PDS's own XRPC admin "
        "endpoints with the admin password; no shell in the container is needed.",
    )
    areas = admin_parser.add_subparsers(dest="admin_area", metavar="AREA", required=True)
    account = areas.add_parser("account", help="list, create, delete, take down, update accounts")
    actions = account.add_subparsers(dest="admin_action", metavar="ACTION", required=True)

    def action(
        name: str, handler: Handler, help_text: str, *, takes_account: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        if takes_account:
            parser.add_argument("account", help="handle (alice.pds.example.com) or DID")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        add_target_options(parser)
        parser.set_defaults(handler=guarded(handler), admin_action=name)
        return parser

    action(
        "list",
        _list,
        "list every account with handle, DID, e-mail and status",
        takes_account=False,
    )
    create = action(
        "create",
        _create,
        "create an account (mints a one-use invite if needed)",
        takes_account=False,
    )
    create.add_argument("handle", help="the new handle, e.g. alice.pds.example.com")
    create.add_argument("--email", required=True, help="the account's e-mail address")
    create.add_argument("--password", help="initial password (default: a random one, printed once)")
    create.add_argument("--invite-code", help="use this invite code instead of minting one")
    delete = action("delete", _delete, "delete an account and its repository (asks first)")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    takedown = action(
        "takedown", _takedown, "take an account down: it stops being served (asks first)"
    )
    takedown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    action("untakedown", _untakedown, "reverse a takedown")
    reset = action(
        "reset-password", _reset_password, "set a new password (random unless --password)"
    )
    reset.add_argument("--password", help="the new password (default: a random one, printed once)")
    update = action("update", _update, "change an account's e-mail and/or handle")
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
    create_invites.set_defaults(handler=guarded(_create_invites), admin_action="invites")
