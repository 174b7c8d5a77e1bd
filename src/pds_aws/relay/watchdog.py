"""The relay watchdog: a scheduled Lambda function that checks every configured relay.

Each run requests a crawl again when a relay does not know the host or finds it idle, logs one
line per finding (`ALARM relay: ...`, `WARN relay: ...`, `OK relay: ...`) and fails the
invocation when anything is an alarm: the stack's alarm on the function's `Errors` metric then
notifies the alarm topic, and returns to OK by itself once a run passes. Warnings (accounts
approaching the relay's limit, a commit not yet propagated) feed a second alarm through a
metric filter on `WARN relay`.

Settings come from the environment (set by the stack): PDS_HOSTNAME, PDS_URL, RELAYS (comma
separated), RELAY_ACCOUNT_LIMIT, RELAY_LAG_THRESHOLD_S. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pds_aws.errors import PdsAwsError
from pds_aws.relay.facts import (
    DEFAULT_ACCOUNT_LIMIT,
    DEFAULT_LAG_THRESHOLD_S,
    Finding,
    Level,
    RelayUnreachable,
    check_relay,
)


class RelayAlarm(PdsAwsError):
    """At least one relay fact is an alarm; the message lists them."""


def format_finding(finding: Finding) -> str:
    line = f"{finding.level.upper()} relay: {finding.relay} {finding.subject}: {finding.detail}"
    return line + (f" (fix: {finding.fix.splitlines()[0]})" if finding.fix else "")


def run_checks(env: Mapping[str, str]) -> list[Finding]:
    hostname, pds_url = env["PDS_HOSTNAME"], env["PDS_URL"].rstrip("/")
    findings: list[Finding] = []
    for relay in filter(None, (r.strip() for r in env.get("RELAYS", "").split(","))):
        try:
            findings += check_relay(
                relay,
                hostname,
                pds_url,
                account_limit=int(env.get("RELAY_ACCOUNT_LIMIT", DEFAULT_ACCOUNT_LIMIT)),
                lag_threshold_s=float(env.get("RELAY_LAG_THRESHOLD_S", DEFAULT_LAG_THRESHOLD_S)),
            )
        except RelayUnreachable as exc:
            findings.append(Finding(Level.WARN, relay, hostname, f"no answer: {exc}"))
    return findings


def handler(event: Any = None, context: Any = None) -> dict[str, int]:
    findings = run_checks(os.environ)
    for finding in findings:
        print(format_finding(finding), flush=True)
    alarms = [f for f in findings if f.level is Level.ALARM]
    if alarms:
        raise RelayAlarm("; ".join(format_finding(f) for f in alarms))
    return {level.value: sum(f.level is level for f in findings) for level in Level}
