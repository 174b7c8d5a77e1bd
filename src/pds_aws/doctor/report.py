"""Doctor results: one line per check, pass, fail, warn or skipped, with the fix of a failure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pds_aws.relay.facts import Finding, Level


class Outcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    """`detail` says what was seen (or why skipped); `fix` what to do: a command or a page."""

    group: str
    name: str
    outcome: Outcome
    detail: str
    fix: str = ""


def passed(group: str, name: str, detail: str) -> Result:
    return Result(group, name, Outcome.PASS, detail)


def failed(group: str, name: str, detail: str, fix: str) -> Result:
    return Result(group, name, Outcome.FAIL, detail, fix)


def skipped(group: str, name: str, why: str) -> Result:
    return Result(group, name, Outcome.SKIPPED, why)


_RELAY_OUTCOME = {Level.OK: Outcome.PASS, Level.WARN: Outcome.WARN, Level.ALARM: Outcome.FAIL}


def from_relay(finding: Finding) -> Result:
    return Result(
        "relay",
        f"{finding.relay} {finding.subject}",
        _RELAY_OUTCOME[finding.level],
        finding.detail,
        finding.fix,
    )


def format_results(results: Iterable[Result]) -> list[str]:
    lines = []
    for result in results:
        lines.append(
            f"{result.outcome.value.upper():<8} {result.group:<8} {result.name}: {result.detail}"
        )
        if result.fix and result.outcome in (Outcome.FAIL, Outcome.WARN):
            first, *rest = result.fix.splitlines()
            lines.append(f"{'':<17} fix: {first}")
            lines += [f"{'':<22} {line}" for line in rest]
    return lines


def summary(results: Sequence[Result]) -> str:
    counts = {outcome: sum(r.outcome is outcome for r in results) for outcome in Outcome}
    verdict = "FAILED" if counts[Outcome.FAIL] else "ok"
    return f"doctor {verdict}: " + ", ".join(f"{n} {o.value}" for o, n in counts.items())


def exit_code(results: Sequence[Result]) -> int:
    return 1 if any(r.outcome is Outcome.FAIL for r in results) else 0
