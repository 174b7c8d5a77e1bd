"""Reading a synthesized CloudFormation template: references, names, list sizes, schedules."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from pds_aws.cost.prices import PricingError

DAYS_PER_MONTH = 365.0 / 12

WEEKS_PER_MONTH = 52.0 / 12


def refs(value: Any) -> Iterator[str]:
    """Logical ids referenced anywhere inside a template value (Ref, GetAtt, Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield str(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                for name in re.findall(r"\$\{([^}!]+)\}", str(text)):
                    yield name.split(".")[0]
                if isinstance(inner, list):
                    yield from refs(inner[1:])
            else:
                yield from refs(inner)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def display_name(logical_id: str) -> str:
    """A logical id without CDK's 8-character hash suffix, for people to read."""
    return re.sub(r"(?<=[a-z0-9])[0-9A-F]{8}$", "", logical_id) or logical_id


def ref_id(value: Any) -> str | None:
    return next(refs(value), None)


def list_count(value: Any) -> int:
    """Length of a list-valued property (subnets); an unresolved token counts as one."""
    if isinstance(value, list):
        return len(value)
    return 1 if value else 0


def _cron_field_count(spec: str, low: int, high: int) -> float:
    """How many values one cron field matches (`*`, `?`, lists, ranges, steps)."""
    total = 0.0
    for part in spec.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = int(a) if a.isdigit() else low, int(b) if b.isdigit() else high
        else:
            first = int(base) if base.isdigit() else low
            last = high if step else first
        total += math.floor((last - first) / int(step)) + 1 if step else last - first + 1
    return total


def runs_per_month(expression: str, hours_per_month: float) -> float:
    """Invocations a month of an EventBridge `rate(...)` or `cron(...)` schedule."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if rate:
        minutes = int(rate.group(1)) * {"m": 1, "h": 60, "d": 1440}[rate.group(2)[0]]
        return hours_per_month * 60 / minutes
    cron = re.fullmatch(r"cron\((.+)\)", expression)
    if not cron:
        raise PricingError(f"schedule {expression!r} is neither rate(...) nor cron(...)")
    minute, hour, day_of_month, _month, day_of_week, _year = cron.group(1).split()
    per_day = _cron_field_count(minute, 0, 59) * _cron_field_count(hour, 0, 23)
    if day_of_week not in ("*", "?"):
        weekdays = len(day_of_week.split(",")) if "-" not in day_of_week else None
        days = (weekdays or _cron_field_count(day_of_week, 1, 7)) * WEEKS_PER_MONTH
    elif day_of_month not in ("*", "?"):
        days = _cron_field_count(day_of_month, 1, 31)
    else:
        days = DAYS_PER_MONTH
    return per_day * days
