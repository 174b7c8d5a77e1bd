"""The CloudWatch Logs term-pattern evaluator against the User Guide's own examples.

Source: CloudWatch Logs User Guide, "Filter pattern syntax for metric filters, subscription
filters, and filter log events", section "Matching terms in unstructured log events"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
Each case is one of the page's examples: the pattern and the events it says match.
"""

from __future__ import annotations

import pytest

from pds_aws.infra.filter_pattern import UnsupportedFilterPattern, matching_events, parse

# The log events the guide's examples run against.
E400 = "[ERROR 400] BAD REQUEST"
E401 = "[ERROR 401] UNAUTHORIZED REQUEST"
E419 = "[ERROR 419] MISSING ARGUMENTS"
E420 = "[ERROR 420] INVALID ARGUMENTS"
E500 = "[ERROR 500] INTERNAL SERVER ERROR"
EVENTS = [E400, E401, E419, E420]


@pytest.mark.parametrize(
    ("pattern", "events", "expected"),
    [
        # "Match a single term"
        ("ERROR", EVENTS, EVENTS),
        # "Match multiple terms": every term must occur
        ("ERROR ARGUMENTS", EVENTS, [E419, E420]),
        # "Match single terms" with OR (`?`): any one of them
        ("?ERROR ?ARGUMENTS", EVENTS, EVENTS),
        ("?ARGUMENTS ?UNAUTHORIZED", EVENTS, [E401, E419, E420]),
        # "Match exact phrases": quoted
        ('"INTERNAL SERVER ERROR"', [*EVENTS, E500], [E500]),
        # "Include and exclude terms": `-` excludes
        ("ERROR -ARGUMENTS", EVENTS, [E400, E401]),
        # "Match everything"
        ('" "', EVENTS, EVENTS),
        ("", EVENTS, EVENTS),
    ],
)
def test_documented_examples(pattern: str, events: list[str], expected: list[str]) -> None:
    assert matching_events(pattern, events) == expected


def test_patterns_are_case_sensitive() -> None:
    assert matching_events("error", EVENTS) == []
    assert matching_events('"ERROR"', ["level=error", "ERROR x"]) == ["ERROR x"]


def test_the_backup_alarm_pattern_counts_error_lines_only() -> None:
    """The sidecar's pattern (`"ERROR"`, from FilterPattern.any_term) on its own line shapes."""
    lines = [
        "INFO backup: healthy: replicating /data to generation g1",
        "WARN litestream: time=t level=WARN msg=x",
        'ERROR litestream: time=t level=ERROR msg="sync error" error="timeout"',
        "ERROR backup: backup store: unreachable",
    ]
    assert matching_events('"ERROR"', lines) == lines[2:]


@pytest.mark.parametrize("pattern", ["{ $.level >= 50 }", "[ip, user, status=404]", "%ERR.R%"])
def test_non_term_patterns_are_rejected_not_guessed(pattern: str) -> None:
    with pytest.raises(UnsupportedFilterPattern, match="only term patterns"):
        parse(pattern)


def test_an_unterminated_quote_is_rejected() -> None:
    with pytest.raises(UnsupportedFilterPattern, match="unterminated quote"):
        parse('"ERROR')
