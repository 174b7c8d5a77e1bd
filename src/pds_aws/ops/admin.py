"""Accounts and invites through the PDS's own admin endpoints (com.atproto.admin.* et al.)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from pds_aws.ops.xrpc import Xrpc, XrpcError

# getAccountInfos takes at most this many DIDs per call (the lexicon's maxLength is larger,
# but long query strings are what proxies reject first).
INFO_BATCH = 50
LIST_PAGE = 500
REPO_REF = "com.atproto.admin.defs#repoRef"


@dataclass(frozen=True)
class Account:
    """An account as `pds-aws admin account list` shows it: its fields are the columns."""

    handle: str
    did: str
    email: str
    status: str  # active, takendown, deactivated, suspended, deleted
    created: str  # when the PDS indexed it

    def row(self) -> dict[str, str]:
        return asdict(self)


ACCOUNT_COLUMNS = tuple(field.name for field in fields(Account))


def account_status(repo: dict[str, Any]) -> str:
    """A listRepos entry's status word: `active` or the PDS's inactive reason."""
    if repo.get("active", True):
        return "active"
    return str(repo.get("status") or "inactive")


def merge_accounts(repos: list[dict[str, Any]], infos: list[dict[str, Any]]) -> list[Account]:
    """listRepos entries joined with getAccountInfos by DID, in listRepos order."""
    by_did = {info["did"]: info for info in infos}
    accounts = []
    for repo in repos:
        info = by_did.get(repo["did"], {})
        accounts.append(
            Account(
                did=repo["did"],
                handle=str(info.get("handle", "")),
                email=str(info.get("email", "")),
                status=account_status(repo),
                created=str(info.get("indexedAt", "")),
            )
        )
    return accounts


def iter_repos(xrpc: Xrpc) -> Iterator[dict[str, Any]]:
    """Every repo (account) the PDS hosts, taken-down and deactivated ones included."""
    cursor: str | None = None
    while True:
        page = xrpc.query("com.atproto.sync.listRepos", {"limit": LIST_PAGE, "cursor": cursor})
        yield from page.get("repos", [])
        cursor = page.get("cursor")
        if not cursor or not page.get("repos"):
            return


def list_accounts(xrpc: Xrpc) -> list[Account]:
    repos = list(iter_repos(xrpc))
    infos: list[dict[str, Any]] = []
    for i in range(0, len(repos), INFO_BATCH):
        dids = [r["did"] for r in repos[i : i + INFO_BATCH]]
        infos += xrpc.query("com.atproto.admin.getAccountInfos", {"dids": dids}, admin=True).get(
            "infos", []
        )
    return merge_accounts(repos, infos)


def resolve_did(xrpc: Xrpc, account: str) -> str:
    """A DID from a DID or a handle hosted on this PDS."""
    if account.startswith("did:"):
        return account
    handle = account.removeprefix("@")
    try:
        return str(xrpc.query("com.atproto.identity.resolveHandle", {"handle": handle})["did"])
    except XrpcError as exc:
        raise XrpcError(
            exc.nsid, exc.status, "UnknownAccount", f"no account with handle {handle!r} here"
        ) from None


def new_password() -> str:
    """A random password for a new account or a reset (shown to the operator once)."""
    return secrets.token_urlsafe(18)


def create_account(
    xrpc: Xrpc, *, handle: str, email: str, password: str, invite_code: str | None = None
) -> dict[str, str]:
    """Create an account; when the PDS requires invites and none is given, mint a one-use code."""
    describe = xrpc.query("com.atproto.server.describeServer")
    if describe.get("inviteCodeRequired") and not invite_code:
        invite_code = create_invites(xrpc, count=1, uses=1)[0]
    body: dict[str, Any] = {"handle": handle, "email": email, "password": password}
    if invite_code:
        body["inviteCode"] = invite_code
    created = xrpc.procedure("com.atproto.server.createAccount", body)
    return {"handle": str(created["handle"]), "did": str(created["did"])}


def delete_account(xrpc: Xrpc, did: str) -> None:
    xrpc.procedure("com.atproto.admin.deleteAccount", {"did": did}, admin=True)


def takedown_body(did: str, applied: bool, now: datetime | None = None) -> dict[str, Any]:
    """updateSubjectStatus input for an account takedown (or its reversal)."""
    takedown: dict[str, Any] = {"applied": applied}
    if applied:
        # The reference shows up in getSubjectStatus; a timestamp tells operators when.
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        takedown["ref"] = f"pds-aws:{stamp}"
    return {"subject": {"$type": REPO_REF, "did": did}, "takedown": takedown}


def set_takedown(xrpc: Xrpc, did: str, applied: bool) -> None:
    xrpc.procedure("com.atproto.admin.updateSubjectStatus", takedown_body(did, applied), admin=True)


def reset_password(xrpc: Xrpc, did: str, password: str) -> None:
    xrpc.procedure(
        "com.atproto.admin.updateAccountPassword", {"did": did, "password": password}, admin=True
    )


def update_account(xrpc: Xrpc, did: str, *, email: str | None, handle: str | None) -> None:
    if email:
        xrpc.procedure(
            "com.atproto.admin.updateAccountEmail", {"account": did, "email": email}, admin=True
        )
    if handle:
        xrpc.procedure(
            "com.atproto.admin.updateAccountHandle", {"did": did, "handle": handle}, admin=True
        )


def create_invites(
    xrpc: Xrpc, *, count: int, uses: int, for_account: str | None = None
) -> list[str]:
    body: dict[str, Any] = {"codeCount": count, "useCount": uses}
    if for_account:
        body["forAccounts"] = [for_account]
    result = xrpc.procedure("com.atproto.server.createInviteCodes", body, admin=True)
    return [code for entry in result.get("codes", []) for code in entry.get("codes", [])]
