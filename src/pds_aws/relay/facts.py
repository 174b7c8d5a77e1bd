"""What a relay knows about this PDS, against what the PDS itself holds, judged.

One module for `pds-aws doctor` and the relay watchdog (a scheduled Lambda function), so the
two can never disagree. Standard library only: the watchdog's asset is this package and
`pds_aws.errors`.

Relay facts come from the relay's own lexicon (com.atproto.sync.getHostStatus,
getRepoStatus, requestCrawl); PDS facts from com.atproto.sync.listRepos (every account's head
and rev). A repo `rev` is a TID, so an account whose rev at the relay is older than at the PDS
has a commit the relay has not taken for `now - time(rev at the PDS)`: that age is the lag.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pds_aws.errors import PdsAwsError

DEFAULT_TIMEOUT_S = 20.0
# A relay gives a new host 100 accounts (and 50 events/s) until the operator asks for more.
DEFAULT_ACCOUNT_LIMIT = 100
# Warn once the host holds this share of the relay's account limit.
ACCOUNT_LIMIT_WARN_SHARE = 0.8
# A commit the relay still lacks after this long is an alarm, not propagation delay.
DEFAULT_LAG_THRESHOLD_S = 600.0
# Host states from the lexicon (com.atproto.sync.defs#hostStatus).
HEALTHY_HOST_STATES = frozenset({"active"})
CRAWL_AGAIN_HOST_STATES = frozenset({"idle"})
ALARM_HOST_STATES = frozenset({"throttled", "offline", "banned"})
# Account states that mean the relay does not pass the account's commits on.
ALARM_ACCOUNT_STATES = frozenset({"throttled", "takendown", "suspended"})
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    ALARM = "alarm"


@dataclass(frozen=True)
class Finding:
    """One judged fact: `subject` is the relay or an account, `fix` what the operator does."""

    level: Level
    relay: str
    subject: str
    detail: str
    fix: str = ""


class RelayUnreachable(PdsAwsError):
    """The relay or the PDS did not answer; the message names the URL and the error."""


@dataclass(frozen=True)
class HostStatus:
    """getHostStatus; `known` is False when the relay answers HostNotFound."""

    known: bool
    status: str = ""
    seq: int | None = None
    account_count: int | None = None


@dataclass(frozen=True)
class RepoHead:
    did: str
    rev: str
    active: bool = True
    status: str = ""


def tid_time(tid: str) -> datetime:
    """The time inside an atproto TID (a repo `rev`): 53 bits of microseconds since 1970."""
    if len(tid) != 13 or any(c not in _TID_ALPHABET for c in tid):
        raise ValueError(f"{tid!r} is not a TID")
    number = 0
    for char in tid:
        number = number * 32 + _TID_ALPHABET.index(char)
    return datetime.fromtimestamp((number >> 10) / 1_000_000, UTC)


def relay_base(relay: str) -> str:
    """A relay URL from 'bsky.network' or 'https://bsky.network/'."""
    relay = relay.strip().rstrip("/")
    return relay if "://" in relay else f"https://{relay}"


# -- I/O --------------------------------------------------------------------------------------


def _call(
    base: str,
    nsid: str,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> tuple[int, dict[str, Any]]:
    """An XRPC call; the status and JSON body, error statuses included."""
    url = f"{base}/xrpc/{nsid}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"User-Agent": "pds-aws-relay-check"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RelayUnreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None
    try:
        value = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        value = {}
    return status, value if isinstance(value, dict) else {}


def host_status(relay: str, hostname: str, timeout: float = DEFAULT_TIMEOUT_S) -> HostStatus:
    status, body = _call(
        relay, "com.atproto.sync.getHostStatus", {"hostname": hostname}, timeout=timeout
    )
    if status == 400 and body.get("error") == "HostNotFound":
        return HostStatus(known=False)
    if status != 200:
        raise RelayUnreachable(
            f"{relay}: getHostStatus answered HTTP {status} {body.get('error', '')}".rstrip()
        )
    return HostStatus(
        known=True,
        status=str(body.get("status", "")),
        seq=body.get("seq"),
        account_count=body.get("accountCount"),
    )


def relay_repo(relay: str, did: str, timeout: float = DEFAULT_TIMEOUT_S) -> RepoHead | None:
    """getRepoStatus at the relay; None when it does not know the account."""
    status, body = _call(relay, "com.atproto.sync.getRepoStatus", {"did": did}, timeout=timeout)
    if status == 400 and body.get("error") in {"RepoNotFound", "NotFound"}:
        return None
    if status != 200:
        raise RelayUnreachable(f"{relay}: getRepoStatus({did}) answered HTTP {status}")
    return RepoHead(
        did=did,
        rev=str(body.get("rev", "")),
        active=bool(body.get("active", True)),
        status=str(body.get("status", "")),
    )


def request_crawl(relay: str, hostname: str, timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """requestCrawl; the relay's answer in one line."""
    status, body = _call(
        relay, "com.atproto.sync.requestCrawl", body={"hostname": hostname}, timeout=timeout
    )
    if status != 200:
        raise RelayUnreachable(f"{relay}: requestCrawl answered HTTP {status} {body}")
    return f"crawl of {hostname} requested at {relay}"


def pds_heads(pds_url: str, timeout: float = DEFAULT_TIMEOUT_S) -> list[RepoHead]:
    """Every account's rev at the PDS (com.atproto.sync.listRepos, all pages)."""
    heads: list[RepoHead] = []
    cursor = ""
    while True:
        params = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
        status, body = _call(pds_url, "com.atproto.sync.listRepos", params, timeout=timeout)
        if status != 200:
            raise RelayUnreachable(f"{pds_url}: listRepos answered HTTP {status}")
        for repo in body.get("repos", []):
            heads.append(
                RepoHead(
                    did=str(repo["did"]),
                    rev=str(repo.get("rev", "")),
                    active=bool(repo.get("active", True)),
                    status=str(repo.get("status", "")),
                )
            )
        cursor = str(body.get("cursor", ""))
        if not cursor or not body.get("repos"):
            return heads


# -- judging (pure) ---------------------------------------------------------------------------


def limit_request(hostname: str, accounts: int, limit: int) -> str:
    """A drafted request to raise the relay's account limit for this host."""
    return (
        f"Subject: account limit for PDS {hostname}\n\n"
        f"Hello, I run the self-hosted PDS {hostname}. It now hosts {accounts} accounts, "
        f"close to the relay's default limit of {limit}. Could you raise the account limit "
        f"for this host? Contact: the admin of {hostname}. Thank you."
    )


def judge_host(
    relay: str,
    hostname: str,
    host: HostStatus,
    *,
    pds_accounts: int,
    pds_seq: int | None,
    account_limit: int,
) -> list[Finding]:
    if not host.known:
        return [
            Finding(
                Level.ALARM,
                relay,
                hostname,
                "the relay does not know this host",
                "pds-aws request-crawl (or: the doctor requests it); then re-run in a minute",
            )
        ]
    findings: list[Finding] = []
    if host.status in ALARM_HOST_STATES:
        findings.append(
            Finding(
                Level.ALARM,
                relay,
                hostname,
                f"host status {host.status}",
                "ask the relay's operators to lift it (for bsky.network: the Bluesky support "
                "form, naming the hostname); posts do not reach the network until then",
            )
        )
    elif host.status in CRAWL_AGAIN_HOST_STATES:
        findings.append(
            Finding(Level.WARN, relay, hostname, "host idle at the relay", "request a crawl")
        )
    elif host.status and host.status not in HEALTHY_HOST_STATES:
        findings.append(Finding(Level.WARN, relay, hostname, f"host status {host.status!r}"))
    else:
        findings.append(Finding(Level.OK, relay, hostname, f"host status {host.status or '?'}"))
    if pds_seq is not None and host.seq is not None:
        behind = pds_seq - host.seq
        level = Level.OK if behind <= 0 else Level.WARN
        findings.append(Finding(level, relay, hostname, f"relay seq {host.seq}, PDS seq {pds_seq}"))
    counted = host.account_count if host.account_count is not None else pds_accounts
    if counted >= account_limit:
        findings.append(
            Finding(
                Level.ALARM,
                relay,
                hostname,
                f"{counted} accounts: at the relay's limit of {account_limit}",
                "send the drafted limit request below (or raise [relay] account_limit if it "
                "was already raised)\n" + limit_request(hostname, counted, account_limit),
            )
        )
    elif counted >= ACCOUNT_LIMIT_WARN_SHARE * account_limit:
        findings.append(
            Finding(
                Level.WARN,
                relay,
                hostname,
                f"{counted} accounts, approaching the relay's limit of {account_limit}",
                "send the drafted limit request below\n"
                + limit_request(hostname, counted, account_limit),
            )
        )
    return findings


def judge_accounts(
    relay: str,
    pds: Sequence[RepoHead],
    at_relay: Mapping[str, RepoHead | None],
    *,
    now: datetime,
    lag_threshold_s: float,
) -> list[Finding]:
    """Each active account's head at the relay against the PDS's head."""
    findings: list[Finding] = []
    current = 0
    for head in pds:
        if not head.active or not head.rev:
            continue
        seen = at_relay.get(head.did)
        if seen is not None and seen.status in ALARM_ACCOUNT_STATES:
            findings.append(
                Finding(
                    Level.ALARM,
                    relay,
                    head.did,
                    f"account {seen.status} at the relay",
                    "ask the relay's operators about this account; its posts do not reach "
                    "the network",
                )
            )
            continue
        if seen is not None and seen.rev >= head.rev:
            current += 1
            continue
        age = (now - tid_time(head.rev)).total_seconds()
        where = "unknown to the relay" if seen is None else f"relay at rev {seen.rev}"
        level = Level.ALARM if age > lag_threshold_s else Level.WARN
        findings.append(
            Finding(
                level,
                relay,
                head.did,
                f"PDS at rev {head.rev} ({age:.0f} s old), {where}",
                "request a crawl; if it stays behind, the relay dropped this account",
            )
        )
    findings.append(
        Finding(Level.OK, relay, "accounts", f"{current} of {len(pds)} accounts current")
    )
    return findings


def check_relay(
    relay: str,
    hostname: str,
    pds_url: str,
    *,
    pds_seq: int | None = None,
    account_limit: int = DEFAULT_ACCOUNT_LIMIT,
    lag_threshold_s: float = DEFAULT_LAG_THRESHOLD_S,
    now: datetime | None = None,
    crawl_when_unknown: bool = True,
) -> list[Finding]:
    """Every relay fact for one relay; requests a crawl when the host is unknown or idle."""
    base = relay_base(relay)
    heads = pds_heads(pds_url)
    host = host_status(base, hostname)
    findings = judge_host(
        base,
        hostname,
        host,
        pds_accounts=len(heads),
        pds_seq=pds_seq,
        account_limit=account_limit,
    )
    if crawl_when_unknown and (not host.known or host.status in CRAWL_AGAIN_HOST_STATES):
        findings.append(Finding(Level.OK, base, hostname, request_crawl(base, hostname)))
    if host.known:
        at_relay = {head.did: relay_repo(base, head.did) for head in heads if head.active}
        findings += judge_accounts(
            base, heads, at_relay, now=now or datetime.now(UTC), lag_threshold_s=lag_threshold_s
        )
    return findings


def worst(findings: Iterable[Finding]) -> Level:
    levels = {f.level for f in findings}
    for level in (Level.ALARM, Level.WARN):
        if level in levels:
            return level
    return Level.OK
