"""CloudWatch Logs term filter patterns, evaluated here the way CloudWatch evaluates them.

moto has no TestMetricFilter, so the tests that count what an alarm would count apply the
stack's own metric-filter pattern (read from the synthesized template) with this module.
It implements the term syntax for unstructured log events, as documented in the CloudWatch
Logs User Guide, "Filter pattern syntax for metric filters, subscription filters, and filter
log events", section "Matching terms in unstructured log events":
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
(and https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntaxForMetricFilters.html):

- `ERROR`: events that contain the term; `ERROR ARGUMENTS`: events that contain every term;
- `?ERROR ?ARGUMENTS`: events that contain any of the `?` terms;
- `ERROR -ARGUMENTS`: events that contain ERROR and not ARGUMENTS;
- `"INTERNAL SERVER ERROR"`: the exact phrase (quotes are needed for terms with characters
  other than letters, digits and underscores);
- `" "` (or an empty pattern): every event;
- patterns are case sensitive.

Matching is by substring. The guide does not say whether an unquoted term may match inside a
longer word; substring matching counts every event a word match counts, so "no event
matches" here implies "no event matches" in CloudWatch, which is what the alarm tests need.
JSON (`{ ... }`), space-delimited (`[ ... ]`) and regex (`%...%`) patterns are not term
patterns: they are rejected, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class UnsupportedFilterPattern(ValueError):
    pass


@dataclass(frozen=True)
class TermPattern:
    required: tuple[str, ...]  # every one must occur
    any_of: tuple[str, ...]  # `?` terms: one must occur (none given: no condition)
    excluded: tuple[str, ...]  # `-` terms: none may occur

    def matches(self, message: str) -> bool:
        if any(term in message for term in self.excluded):
            return False
        if not all(term in message for term in self.required):
            return False
        return not self.any_of or any(term in message for term in self.any_of)


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """(prefix, term) pairs; prefix is '', '?' or '-'; quoted terms keep their spaces."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i].isspace():
            i += 1
            continue
        prefix = ""
        if pattern[i] in "?-" and i + 1 < n and not pattern[i + 1].isspace():
            prefix = pattern[i]
            i += 1
        if pattern[i] == '"':
            end = pattern.find('"', i + 1)
            if end == -1:
                raise UnsupportedFilterPattern(f"unterminated quote in filter pattern {pattern!r}")
            tokens.append((prefix, pattern[i + 1 : end]))
            i = end + 1
        else:
            start = i
            while i < n and not pattern[i].isspace():
                i += 1
            tokens.append((prefix, pattern[start:i]))
    return tokens


def parse(pattern: str) -> TermPattern:
    """Parse a term pattern; raise UnsupportedFilterPattern for the other pattern kinds."""
    text = pattern.strip()
    if text[:1] in ("{", "[") or (len(text) > 1 and text[0] == "%" and text[-1] == "%"):
        raise UnsupportedFilterPattern(
            f"filter pattern {pattern!r} is a JSON, space-delimited or regex pattern; "
            "only term patterns are evaluated here"
        )
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    for prefix, term in _tokens(text):
        if not term.strip():
            continue  # `" "` matches everything: an empty term adds no condition
        {"": required, "?": any_of, "-": excluded}[prefix].append(term)
    return TermPattern(tuple(required), tuple(any_of), tuple(excluded))


def matching_events(pattern: str, messages: Iterable[str]) -> list[str]:
    """The log events (one message each) the pattern matches, as a metric filter counts them."""
    term_pattern = parse(pattern)
    return [message for message in messages if term_pattern.matches(message)]
