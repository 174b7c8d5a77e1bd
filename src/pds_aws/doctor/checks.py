"""`pds-aws doctor`'s checks: the failures self-hosters meet most, each with its fix.

Groups: dns, tls, http, firehose, email, relay, backup. Against the local runtime the checks
that need the public internet or AWS (public DNS, a public certificate, SES) are reported as
skipped with the reason, never as passed. Each check returns Results and raises nothing: an
unexpected answer is a failure that names what came back.
"""

from __future__ import annotations

import secrets as pysecrets
import smtplib
import socket
import sqlite3
import ssl
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pds_aws.doctor.report import Outcome, Result, failed, from_relay, passed, skipped
from pds_aws.ops import smoke
from pds_aws.ops.target import Target
from pds_aws.relay import facts

# A certificate closer than this to expiry fails: ACM renews 60 days ahead, Let's Encrypt
# clients 30 days ahead, so a certificate this close has missed its renewal.
TLS_MIN_DAYS = 14
SEQUENCER_DATABASE = "sequencer.sqlite"
DNS_FIX = (
    "Route 53 console -> Hosted zones -> {zone}: records for {domain} and *.{domain} must point "
    "at the edge (`make deploy CONFIG=...` creates both); public DNS can take minutes to follow"
)


@dataclass
class Doctor:
    """What the checks need to know about the PDS; the I/O is injectable for tests."""

    target: Target
    domain: str
    hosted_zone: str
    region: str
    relays: Sequence[str]
    account_limit: int = facts.DEFAULT_ACCOUNT_LIMIT
    lag_threshold_s: float = facts.DEFAULT_LAG_THRESHOLD_S
    email_to: str | None = None
    smtp_url: str | None = field(default=None, repr=False)
    aws_session: Any = None
    backup_status: Callable[[], dict[str, Any]] | None = None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def local(self) -> bool:
        return self.target.is_local

    @property
    def probe(self) -> smoke.Probe:
        return smoke.probe_with_key(self.target.url, self.target.rate_limit_bypass_key)


# -- dns and tls ----------------------------------------------------------------------------


def random_handle_host(domain: str) -> str:
    return f"doctor-{pysecrets.token_hex(4)}.{domain}"


def resolve(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        return set()


def check_dns(doc: Doctor) -> list[Result]:
    if doc.local:
        return [skipped("dns", "records", "the local runtime has no public DNS")]
    fix = DNS_FIX.format(zone=doc.hosted_zone, domain=doc.domain)
    edge = resolve(doc.domain)
    if not edge:
        return [failed("dns", doc.domain, "does not resolve", fix)]
    results = [passed("dns", doc.domain, ", ".join(sorted(edge)))]
    handle_host = random_handle_host(doc.domain)
    handle = resolve(handle_host)
    if not handle:
        results.append(failed("dns", handle_host, "a handle subdomain does not resolve", fix))
    elif not handle & edge:
        results.append(
            failed("dns", handle_host, f"resolves to {sorted(handle)}, not the edge", fix)
        )
    else:
        results.append(passed("dns", handle_host, "a handle subdomain reaches the edge"))
    return results


def certificate_expiry(host: str, timeout: float = 10.0) -> datetime:
    """Connect with full verification (chain and name); the certificate's notAfter."""
    context = ssl.create_default_context()
    with (
        socket.create_connection((host, 443), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        cert = tls.getpeercert()
    not_after = str((cert or {}).get("notAfter", ""))
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)


def judge_expiry(host: str, expires: datetime, now: datetime) -> Result:
    days = (expires - now).total_seconds() / 86400
    if days < TLS_MIN_DAYS:
        return failed(
            "tls",
            host,
            f"certificate expires in {days:.0f} days ({expires:%Y-%m-%d})",
            "ACM console -> Certificates: its renewal needs the validation CNAME records in "
            "the hosted zone (direct shape: the proxy's renewal log)",
        )
    return passed("tls", host, f"valid, expires {expires:%Y-%m-%d} ({days:.0f} days)")


def check_tls(doc: Doctor) -> list[Result]:
    if doc.local:
        return [skipped("tls", "certificate", "the local runtime has no public certificate")]
    results = []
    for host in (doc.domain, random_handle_host(doc.domain)):
        try:
            results.append(judge_expiry(host, certificate_expiry(host), doc.now()))
        except (OSError, ssl.SSLError, ValueError) as exc:
            results.append(
                failed(
                    "tls",
                    host,
                    f"no valid certificate: {exc}",
                    f"the certificate must cover {doc.domain} and *.{doc.domain}: "
                    "ACM console -> Certificates (or `make deploy CONFIG=...` again)",
                )
            )
    return results


# -- http and firehose ----------------------------------------------------------------------

_EDGE_FIX = (
    "the edge must apply the route table (src/pds_aws/routes.py): check the load balancer's "
    "listener rules in the EC2 console, or redeploy with `make deploy CONFIG=...`"
)
_HTTP_CHECKS: tuple[tuple[str, str, Callable[[smoke.HttpResponse], str], str], ...] = (
    (
        "health",
        "/xrpc/_health",
        smoke.verify_health,
        "the PDS is not answering: `pds-aws status` and `pds-aws logs` show why",
    ),
    (
        "describeServer",
        "/xrpc/com.atproto.server.describeServer",
        smoke.verify_describe_server,
        "the PDS's own answer is wrong: check PDS_HOSTNAME and PDS_SERVICE_HANDLE_DOMAINS",
    ),
    (
        "oauth protected resource",
        "/.well-known/oauth-protected-resource",
        smoke.verify_protected_resource,
        "OAuth paths must reach the PDS (/.well-known/*, /oauth/*): " + _EDGE_FIX,
    ),
    (
        "oauth authorization server",
        "/.well-known/oauth-authorization-server",
        smoke.verify_authorization_server,
        "OAuth paths must reach the PDS (/.well-known/*, /oauth/*): " + _EDGE_FIX,
    ),
    ("robots", "/robots.txt", smoke.verify_robots, _EDGE_FIX),
    ("allow-list", smoke.DENIED_PROBE_PATH, smoke.verify_denied, _EDGE_FIX),
)


def _run(group: str, name: str, fix: str, check: Callable[[], str]) -> Result:
    try:
        return passed(group, name, check())
    except smoke.CheckFailed as exc:
        return failed(group, name, str(exc), fix)


def check_http(doc: Doctor) -> list[Result]:
    probe = doc.probe
    results = [
        _run("http", name, fix, lambda path=path, verify=verify: verify(probe.fetch(path)))  # type: ignore[misc]
        for name, path, verify, fix in _HTTP_CHECKS
    ]
    results.append(check_handle_did(doc))
    return results


def existing_handle(doc: Doctor) -> tuple[str, str] | None:
    """(handle, did) of one active account, or None when the PDS has none."""
    for head in facts.pds_heads(doc.target.url):
        if not head.active:
            continue
        response = doc.probe.fetch(
            "/xrpc/com.atproto.repo.describeRepo?" + urllib.parse.urlencode({"repo": head.did})
        )
        if response.status == 200:
            return str(response.json().get("handle", "")), head.did
    return None


def check_handle_did(doc: Doctor) -> Result:
    name = "/.well-known/atproto-did"
    try:
        found = existing_handle(doc)
    except (facts.RelayUnreachable, smoke.CheckFailed) as exc:
        return failed("http", name, f"cannot list accounts: {exc}", _EDGE_FIX)
    if found is None:
        return skipped("http", name, "no account yet: create one, then run doctor again")
    handle, did = found
    if doc.local:
        # The local edge forwards Host, as the load balancer does: the handle's own host.
        url = doc.target.url.rstrip("/") + "/.well-known/atproto-did"
        response = smoke.http_get(url, headers={"Host": handle})
    else:
        response = smoke.http_get(f"https://{handle}/.well-known/atproto-did")
    if response.status == 200 and response.text.strip() == did:
        return passed("http", name, f"{handle} -> {did}")
    fix = (
        "the local edge must pass the Host header to the PDS (src/pds_aws/local/proxy.py)"
        if doc.local
        else f"handles on subdomains need the wildcard record *.{doc.domain} and the "
        "certificate for it, and the edge must pass the Host header to the PDS"
    )
    detail = f"{handle} answered HTTP {response.status} {response.text.strip()[:80]!r}, not {did}"
    return failed("http", name, detail, fix)


def check_firehose(doc: Doctor) -> list[Result]:
    fix = (
        "the subscribeRepos websocket must pass the edge (/xrpc/* with websocket upgrades): "
        + _EDGE_FIX
    )
    return [_run("firehose", "subscribeRepos", fix, lambda: smoke.check_subscribe_repos(doc.probe))]


# -- e-mail ---------------------------------------------------------------------------------


def judge_ses(identity: Mapping[str, Any], account: Mapping[str, Any], domain: str) -> list[Result]:
    """SES GetEmailIdentity and GetAccount (sesv2) answers, judged."""
    page = "SES console -> Identities -> " + domain
    results = []
    if identity.get("VerifiedForSendingStatus"):
        results.append(passed("email", "identity", f"{domain} verified for sending"))
    else:
        results.append(
            failed(
                "email",
                "identity",
                f"{domain} not verified",
                f"{page}: its DKIM CNAME records must be in the hosted zone",
            )
        )
    dkim = str((identity.get("DkimAttributes") or {}).get("Status", "NOT_STARTED"))
    if dkim == "SUCCESS":
        results.append(passed("email", "dkim", "DKIM verified"))
    else:
        results.append(failed("email", "dkim", f"DKIM status {dkim}", page))
    if account.get("ProductionAccessEnabled"):
        results.append(passed("email", "sending", "production access: mail to any address"))
    else:
        results.append(
            Result(
                "email",
                "sending",
                Outcome.WARN,
                "SES sandbox: mail reaches only verified addresses, so sign-up confirmations "
                "and password resets to users' own addresses are not delivered",
                "request production access: SES console -> Account dashboard -> Request "
                "production access (guides/DEPLOY.md)",
            )
        )
    return results


def send_test_mail(smtp_url: str, sender: str, to: str, timeout: float = 30.0) -> str:
    """One message through the PDS's own SMTP URL (smtp:// or smtps://user:password@host)."""
    url = urllib.parse.urlsplit(smtp_url)
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = "pds-aws doctor: test message"
    message.set_content("Sent by `pds-aws doctor --email` through the PDS's SMTP settings.")
    port = url.port or (465 if url.scheme == "smtps" else 25)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with smtp_class(url.hostname or "", port, timeout=timeout) as smtp:
        if url.username:
            smtp.login(urllib.parse.unquote(url.username), urllib.parse.unquote(url.password or ""))
        smtp.send_message(message)
    return f"sent to {to} via {url.hostname}:{port}"


def check_email(doc: Doctor, sender: str) -> list[Result]:
    results: list[Result] = []
    if doc.local:
        results.append(skipped("email", "ses", "SES is not emulated locally"))
    else:
        try:
            sesv2 = doc.aws_session.client("sesv2", region_name=doc.region)
            results += judge_ses(
                sesv2.get_email_identity(EmailIdentity=doc.domain), sesv2.get_account(), doc.domain
            )
        except Exception as exc:  # botocore's errors: reported, the other checks go on
            results.append(
                failed("email", "ses", f"cannot read SES: {exc}", "check AWS credentials/region")
            )
    if doc.email_to is None:
        results.append(skipped("email", "send", "pass --email ADDRESS to send a test message"))
    elif not doc.smtp_url:
        results.append(
            failed("email", "send", "the PDS has no SMTP URL", "redeploy: the stack writes it")
        )
    else:
        try:
            results.append(
                passed("email", "send", send_test_mail(doc.smtp_url, sender, doc.email_to))
            )
        except (OSError, smtplib.SMTPException) as exc:
            results.append(
                failed(
                    "email",
                    "send",
                    f"SMTP failed: {exc}",
                    "SES console -> SMTP settings; in the sandbox the recipient must be verified",
                )
            )
    return results


# -- relays and backups ---------------------------------------------------------------------


def sequencer_seq(data_dir: Path) -> int | None:
    """The PDS's latest sequence number, from its sequencer database on the shared volume."""
    path = data_dir / SEQUENCER_DATABASE
    if not path.is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("select max(seq) from repo_seq").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def check_relays(doc: Doctor) -> list[Result]:
    if not doc.relays:
        return [skipped("relay", "relays", "no relay configured ([pds] crawlers or --relay)")]
    pds_seq = None
    if doc.target.local_state is not None and doc.target.local_state.data_dir:
        pds_seq = sequencer_seq(Path(doc.target.local_state.data_dir))
    results: list[Result] = []
    for relay in doc.relays:
        try:
            findings = facts.check_relay(
                relay,
                doc.target.hostname,
                doc.target.url,
                pds_seq=pds_seq,
                account_limit=doc.account_limit,
                lag_threshold_s=doc.lag_threshold_s,
                now=doc.now(),
            )
        except facts.RelayUnreachable as exc:
            results.append(
                failed("relay", relay, f"no answer: {exc}", "check the relay URL in [pds] crawlers")
            )
            continue
        results += [from_relay(f) for f in findings]
    return results


def check_backup(doc: Doctor, max_age_s: float) -> list[Result]:
    from pds_aws.ops.status import Status, backup_lag, judge

    if doc.backup_status is None:
        return [skipped("backup", "freshness", "the target names no backup")]
    status = Status(url=doc.target.url)
    try:
        status.backup = doc.backup_status()
    except Exception as exc:  # any failure to read the backup is a finding, not a crash
        status.backup_error = str(exc)
    if status.backup is not None:
        try:
            heads = facts.pds_heads(doc.target.url)
        except facts.RelayUnreachable as exc:
            return [failed("backup", "freshness", f"cannot list accounts: {exc}", _EDGE_FIX)]
        repos = [{"did": h.did, "rev": h.rev} for h in heads]
        status.lag = backup_lag(repos, status.backup.get("databases") or {})
    problems = judge(status, max_age_s, doc.now())
    if problems:
        return [
            failed(
                "backup",
                "freshness",
                "; ".join(problems),
                "`pds-aws status` shows each database; `pds-aws logs --container backup` the "
                "sidecar's errors",
            )
        ]
    lag = f"{status.lag.seconds:.0f} s behind" if status.lag else "no accounts yet"
    generation = (status.backup or {}).get("current_generation")
    return [passed("backup", "freshness", f"generation {generation}, {lag}")]


def run_all(doc: Doctor, *, sender: str, max_backup_age_s: float) -> list[Result]:
    results: list[Result] = []
    for group in (check_dns, check_tls, check_http, check_firehose):
        results += group(doc)
    results += check_email(doc, sender)
    results += check_relays(doc)
    results += check_backup(doc, max_backup_age_s)
    return results
