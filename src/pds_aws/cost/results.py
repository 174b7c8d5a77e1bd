"""What the model produces: charges, priced line items, unpriced resources, the estimate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    FIXED = "fixed"  # accrues with the stack idle
    VARIABLE = "variable"  # grows with use (the [cost] assumptions)


@dataclass(frozen=True)
class Charge:
    """One metered quantity of one price, for one or more resources."""

    label: str
    price_key: str
    quantity: float
    kind: Kind
    logical_ids: tuple[str, ...] = ()
    free_pool: str | None = None
    note: str = ""


@dataclass(frozen=True)
class LineItem:
    resource: str
    logical_ids: tuple[str, ...]
    quantity: float
    unit: str
    unit_price: float
    free_quantity: float
    monthly: float
    kind: Kind
    price_key: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "logical_ids": list(self.logical_ids),
            "quantity": self.quantity,
            "unit": self.unit,
            "unit_price": self.unit_price,
            "free_quantity": self.free_quantity,
            "monthly": round(self.monthly, 6),
            "kind": self.kind.value,
            "price": self.price_key,
            "note": self.note,
        }


@dataclass(frozen=True)
class Unpriced:
    logical_id: str
    resource_type: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"logical_id": self.logical_id, "type": self.resource_type, "why": self.why}


@dataclass(frozen=True)
class Estimate:
    region: str
    hours_per_month: float
    lines: tuple[LineItem, ...]
    unpriced: tuple[Unpriced, ...]
    free: tuple[tuple[str, str, str], ...]  # (logical id, type, why)
    notes: tuple[str, ...]
    reference_monthly: float
    reference_name: str
    assumptions: Mapping[str, Any]
    # With [pipeline] on: what one pipeline run costs before free allowances (USD).
    pipeline_run_usd: float | None = None

    @property
    def fixed_monthly(self) -> float:
        return sum(line.monthly for line in self.lines if line.kind is Kind.FIXED)

    @property
    def variable_monthly(self) -> float:
        return sum(line.monthly for line in self.lines if line.kind is Kind.VARIABLE)

    @property
    def total_monthly(self) -> float:
        return self.fixed_monthly + self.variable_monthly

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "currency": "USD",
            "hours_per_month": self.hours_per_month,
            "fixed_monthly": round(self.fixed_monthly, 2),
            "variable_monthly": round(self.variable_monthly, 2),
            "total_monthly": round(self.total_monthly, 2),
            "reference": {"name": self.reference_name, "fixed_monthly": self.reference_monthly},
            "lines": [line.to_json() for line in self.lines],
            "unpriced": [u.to_json() for u in self.unpriced],
            "free": [{"logical_id": i, "type": t, "why": w} for i, t, w in self.free],
            "assumptions": dict(self.assumptions),
            "notes": list(self.notes),
            **(
                {"pipeline_run": round(self.pipeline_run_usd, 2)}
                if self.pipeline_run_usd is not None
                else {}
            ),
        }
