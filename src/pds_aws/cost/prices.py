"""Price data: `prices.toml` (dated, a source per line) read into a `PriceBook` per region."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pds_aws.errors import PdsAwsError

PRICES_FILE = "prices.toml"


class PricingError(PdsAwsError):
    """The price data is missing something the template needs (region, price key)."""


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str
    date: str


@dataclass(frozen=True)
class PriceBook:
    region: str
    hours_per_month: float
    prices: Mapping[str, Price]
    free_tier: Mapping[str, float]
    free_types: Mapping[str, str]
    free_type_prefixes: Mapping[str, str]
    reference_monthly: float
    reference_name: str
    reference_region: str
    container_insights: Mapping[str, float]

    def __getitem__(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise PricingError(
                f"src/pds_aws/cost/{PRICES_FILE}: no price '{key}' for region {self.region}; "
                f"add the line to [regions.{self.region}] with its source and date"
            ) from None

    def free_reason(self, resource_type: str) -> str | None:
        if resource_type in self.free_types:
            return self.free_types[resource_type]
        for prefix, reason in self.free_type_prefixes.items():
            if resource_type.startswith(prefix):
                return reason
        return None


def load_price_data() -> dict[str, Any]:
    text = resources.files("pds_aws.cost").joinpath(PRICES_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def price_regions(data: Mapping[str, Any] | None = None) -> list[str]:
    data = load_price_data() if data is None else data
    return sorted(data["regions"])


def load_prices(region: str, data: Mapping[str, Any] | None = None) -> PriceBook:
    """The prices of `region` from the price data file."""
    data = load_price_data() if data is None else data
    regions = data["regions"]
    if region not in regions:
        raise PricingError(
            f"src/pds_aws/cost/{PRICES_FILE} has no prices for region {region!r}; priced "
            f"regions: {', '.join(sorted(regions))}. Estimate with one of them or add "
            f"[regions.{region}] from the AWS pricing pages"
        )
    reference = data["reference"]
    return PriceBook(
        region=region,
        hours_per_month=float(data["meta"]["hours_per_month"]),
        prices={
            key: Price(float(v["usd"]), str(v["per"]), str(v["source"]), str(v["date"]))
            for key, v in regions[region].items()
        },
        free_tier={key: float(v["quantity"]) for key, v in data["free_tier"].items()},
        free_types=dict(data["free_resource_types"]),
        free_type_prefixes=dict(data["free_resource_type_prefixes"]),
        reference_monthly=float(reference["fixed_monthly"]),
        reference_name=str(reference["name"]),
        reference_region=str(reference["region"]),
        container_insights={
            k: float(v) for k, v in data["container_insights"].items() if k.startswith("per_")
        },
    )
