"""The state one estimate is built in: the template's resources, the config, the prices,
and the charges, unpriced and free resources found so far. Each service module adds to it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pds_aws.config import Config, CostSettings
from pds_aws.cost.measured import MeasuredRate
from pds_aws.cost.prices import PriceBook
from pds_aws.cost.results import Charge, Unpriced


@dataclass
class PricingContext:
    resources: Mapping[str, Mapping[str, Any]]
    config: Config
    prices: PriceBook
    backup_idle: MeasuredRate
    charges: list[Charge] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    free: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def usage(self) -> CostSettings:
        return self.config.cost

    @property
    def hours(self) -> float:
        return self.prices.hours_per_month

    def of_type(self, resource_type: str) -> list[tuple[str, Mapping[str, Any]]]:
        return [(i, r) for i, r in self.resources.items() if r.get("Type") == resource_type]

    def props(self, logical_id: str) -> Mapping[str, Any]:
        props: Mapping[str, Any] = self.resources.get(logical_id, {}).get("Properties", {})
        return props

    def add(self, *charges: Charge) -> None:
        self.charges.extend(charges)


# A per-resource pricing function: adds the resource's charges to the context.
Handler = Callable[[PricingContext, str, Mapping[str, Any]], None]
