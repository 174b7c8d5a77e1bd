"""The relay facts, judged: host states, the account limit, each account's head at the relay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pds_aws.relay.facts import (
    ACCOUNT_LIMIT_WARN_SHARE,
    HostStatus,
    Level,
    RepoHead,
    judge_accounts,
    judge_host,
    tid_time,
    worst,
)

RELAY = "https://relay.example"
HOST = "pds.example.com"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def tid_at(moment: datetime) -> str:
    """A TID (repo rev) for `moment`, clock id 0."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    number = int(moment.timestamp() * 1_000_000) << 10
    chars = []
    for _ in range(13):
        chars.append(alphabet[number % 32])
        number //= 32
    return "".join(reversed(chars))


def test_tid_round_trip() -> None:
    moment = NOW - timedelta(minutes=3)
    assert tid_time(tid_at(moment)) == moment


def judge(host: HostStatus, accounts: int = 3, limit: int = 100, seq: int | None = None):  # type: ignore[no-untyped-def]
    return judge_host(RELAY, HOST, host, pds_accounts=accounts, pds_seq=seq, account_limit=limit)


def test_an_active_host_below_the_limit_is_ok() -> None:
    findings = judge(HostStatus(known=True, status="active", seq=10, account_count=3), seq=10)
    assert worst(findings) is Level.OK


def test_an_unknown_host_is_an_alarm_whose_fix_is_a_crawl() -> None:
    [finding] = judge(HostStatus(known=False))
    assert finding.level is Level.ALARM
    assert "request-crawl" in finding.fix


def test_throttled_offline_and_banned_hosts_alarm_and_name_the_fix() -> None:
    for state in ("throttled", "offline", "banned"):
        findings = judge(HostStatus(known=True, status=state, account_count=3))
        assert worst(findings) is Level.ALARM, state
        assert any(state in f.detail and f.fix for f in findings)


def test_an_idle_host_warns() -> None:
    assert worst(judge(HostStatus(known=True, status="idle"))) is Level.WARN


def test_a_relay_behind_the_pds_sequence_warns() -> None:
    findings = judge(HostStatus(known=True, status="active", seq=5), seq=9)
    assert worst(findings) is Level.WARN
    assert any("relay seq 5, PDS seq 9" in f.detail for f in findings)


def test_accounts_near_the_limit_warn_with_a_drafted_request_and_at_it_alarm() -> None:
    limit = 100
    near = int(ACCOUNT_LIMIT_WARN_SHARE * limit)
    warn = judge(HostStatus(known=True, status="active", account_count=near), limit=limit)
    assert worst(warn) is Level.WARN
    assert any("Subject: account limit" in f.fix for f in warn)
    below = judge(HostStatus(known=True, status="active", account_count=near - 1), limit=limit)
    assert worst(below) is Level.OK
    full = judge(HostStatus(known=True, status="active", account_count=limit), limit=limit)
    assert worst(full) is Level.ALARM


def test_each_account_is_compared_with_its_head_at_the_relay() -> None:
    fresh, old = tid_at(NOW - timedelta(seconds=30)), tid_at(NOW - timedelta(hours=1))
    older = tid_at(NOW - timedelta(hours=2))
    pds = [
        RepoHead("did:plc:current", old),
        RepoHead("did:plc:propagating", fresh),
        RepoHead("did:plc:lagging", old),
        RepoHead("did:plc:throttled", old),
        RepoHead("did:plc:deactivated", old, active=False),
    ]
    at_relay = {
        "did:plc:current": RepoHead("did:plc:current", old),
        "did:plc:propagating": RepoHead("did:plc:propagating", old),
        "did:plc:lagging": RepoHead("did:plc:lagging", older),
        "did:plc:throttled": RepoHead("did:plc:throttled", old, status="throttled"),
    }
    findings = judge_accounts(RELAY, pds, at_relay, now=NOW, lag_threshold_s=600)
    by_subject = {f.subject: f for f in findings}
    assert by_subject["did:plc:propagating"].level is Level.WARN
    assert by_subject["did:plc:lagging"].level is Level.ALARM
    assert by_subject["did:plc:throttled"].level is Level.ALARM
    assert "did:plc:current" not in by_subject
    assert "did:plc:deactivated" not in by_subject
    assert by_subject["accounts"].detail == f"1 of {len(pds)} accounts current"


def test_an_account_unknown_to_the_relay_is_judged_by_the_age_of_its_head() -> None:
    head = RepoHead("did:plc:new", tid_at(NOW - timedelta(hours=1)))
    [finding, _] = judge_accounts(RELAY, [head], {}, now=NOW, lag_threshold_s=600)
    assert finding.level is Level.ALARM
    assert "unknown to the relay" in finding.detail
