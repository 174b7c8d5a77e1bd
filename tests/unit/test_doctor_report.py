"""Doctor's verdicts that need no network: report lines, exit code, SES and certificate age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pds_aws.doctor.checks import TLS_MIN_DAYS, judge_expiry, judge_ses
from pds_aws.doctor.report import (
    Outcome,
    exit_code,
    failed,
    format_results,
    from_relay,
    passed,
    skipped,
)
from pds_aws.relay.facts import Finding, Level

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_a_failure_prints_its_fix_and_makes_the_exit_code_non_zero() -> None:
    results = [
        passed("http", "health", "version 0.4.5026"),
        skipped("dns", "records", "the local runtime has no public DNS"),
        failed("http", "robots", "HTTP 404", "redeploy: make deploy CONFIG=pds.toml"),
    ]
    lines = format_results(results)
    assert lines[0].startswith("PASS") and lines[1].startswith("SKIPPED")
    assert lines[2].startswith("FAIL") and "fix: redeploy" in lines[3]
    assert exit_code(results) == 1
    assert exit_code(results[:2]) == 0


def test_relay_levels_map_to_outcomes() -> None:
    outcomes = {level: from_relay(Finding(level, "r", "h", "d")).outcome for level in Level}
    assert outcomes == {Level.OK: Outcome.PASS, Level.WARN: Outcome.WARN, Level.ALARM: Outcome.FAIL}


def test_ses_sandbox_warns_and_says_what_it_means_for_sign_ups() -> None:
    identity = {"VerifiedForSendingStatus": True, "DkimAttributes": {"Status": "SUCCESS"}}
    results = judge_ses(identity, {"ProductionAccessEnabled": False}, "pds.example.com")
    assert [r.outcome for r in results] == [Outcome.PASS, Outcome.PASS, Outcome.WARN]
    assert "sign-up" in results[2].detail and "production access" in results[2].fix
    production = judge_ses(identity, {"ProductionAccessEnabled": True}, "pds.example.com")
    assert all(r.outcome is Outcome.PASS for r in production)


def test_unverified_identity_and_dkim_fail_with_the_console_page() -> None:
    results = judge_ses({"DkimAttributes": {"Status": "PENDING"}}, {}, "pds.example.com")
    assert [r.outcome for r in results[:2]] == [Outcome.FAIL, Outcome.FAIL]
    assert all("SES console" in r.fix for r in results[:2])


def test_a_certificate_near_expiry_fails() -> None:
    soon = judge_expiry("pds.example.com", NOW + timedelta(days=TLS_MIN_DAYS - 1), NOW)
    later = judge_expiry("pds.example.com", NOW + timedelta(days=TLS_MIN_DAYS + 1), NOW)
    assert soon.outcome is Outcome.FAIL and later.outcome is Outcome.PASS
