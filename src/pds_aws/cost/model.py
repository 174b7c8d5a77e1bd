"""The monthly AWS bill of what a config would deploy, priced from the synthesized template.

The model reads the CloudFormation template (`infra.synth.synthesize`), not a hand-kept list,
so the estimate follows every change to the stack. Prices are data
(`pds_aws/cost/prices.toml`, dated, with a source per line); usage assumptions are the
config's `[cost]` section. Every resource is either priced, listed as free in the price data
(with the reason), or reported as unpriced: nothing is skipped silently.

`python -m pds_aws.cost.model --write-guide` regenerates guides/COST.md; `--check-guide` fails when
the committed guide no longer matches.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pds_aws.config import Architecture, Config, CostSettings
from pds_aws.errors import PdsAwsError

PRICES_FILE = "prices.toml"
REPO_ROOT = Path(__file__).resolve().parents[3]
BENCHMARKS_FILE = "BENCHMARKS.md"
GUIDE_FILE = Path("guides") / "COST.md"

# Fargate bills ephemeral storage above this size.
FARGATE_FREE_EPHEMERAL_GIB = 20
# Assumed run of a deploy-time custom resource function (seconds) and invocations per deploy.
CUSTOM_RESOURCE_SECONDS = 30.0
CUSTOM_RESOURCE_INVOCATIONS_PER_DEPLOY = 2
# Steady-state log storage when a log group never expires: a year of ingestion.
UNBOUNDED_LOG_RETENTION_DAYS = 365
DAYS_PER_MONTH = 365.0 / 12
# Below this a month, idle backup replication counts as "close to zero" (DESIGN.md).
IDLE_BACKUP_NEAR_ZERO_USD = 1.0
WEEKS_PER_MONTH = 52.0 / 12


class PricingError(PdsAwsError):
    """The price data is missing something the template needs (region, price key)."""


# ---------------------------------------------------------------------------------------------
# Price data


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


# ---------------------------------------------------------------------------------------------
# Measured backup request rate (BENCHMARKS.md)

_IDLE_RATE_RE = re.compile(r"idle S3 requests per hour", re.IGNORECASE)
_IDLE_HEADING_RE = re.compile(r"^#+ .*idle S3 requests", re.IGNORECASE)
_PER_HOUR_RE = re.compile(r"\*\*~?(\d[\d,]*(?:\.\d+)?) (?:S3 )?(?:requests )?per hour\*\*")
_SCOPE_RE = re.compile(r"(\d[\d,]*) accounts(?: \((\d[\d,]*) databases\))?")
_NUMBER_RE = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?![\w.])")


@dataclass(frozen=True)
class IdleMeasurement:
    """The backup sidecar's measured idle S3 requests per hour, and what it was measured on."""

    requests_per_hour: float
    accounts: int | None = None
    databases: int | None = None


@dataclass(frozen=True)
class MeasuredRate:
    requests_per_hour: float
    source: str  # where the figure comes from, shown beside it


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def parse_backup_idle_rate(markdown: str) -> IdleMeasurement | None:
    """The measured idle S3 requests per hour in BENCHMARKS.md text, if recorded.

    Two shapes are read: the backup section written by benchmarks/backup_report.py (a heading
    "Idle S3 requests" whose text says "N accounts (M databases) ... **R per hour**"), and any
    line naming "idle S3 requests per hour" (a table row's last number, or the first number
    after the phrase).
    """
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        if not _IDLE_HEADING_RE.match(line):
            continue
        section = []
        for body in lines[index + 1 :]:
            if body.startswith("#"):
                break
            section.append(body)
        text = " ".join(section)
        match = _PER_HOUR_RE.search(text)
        if match:
            # The scope nearest before the figure (the measurement, not the target).
            scopes = _SCOPE_RE.findall(text[: match.start()])
            accounts, databases = scopes[-1] if scopes else ("", "")
            return IdleMeasurement(
                _number(match.group(1)),
                int(_number(accounts)) if accounts else None,
                int(_number(databases)) if databases else None,
            )
    for line in lines:
        match = _IDLE_RATE_RE.search(line)
        if not match:
            continue
        if line.lstrip().startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            for cell in reversed(cells[1:]):
                number = _NUMBER_RE.search(cell.replace("*", "").replace("~", ""))
                if number:
                    return IdleMeasurement(_number(number.group(1)))
            continue
        number = _NUMBER_RE.search(line[match.end() :].replace("~", ""))
        if number:
            return IdleMeasurement(_number(number.group(1)))
    return None


def backup_idle_rate(settings: CostSettings, benchmarks: Path | None) -> MeasuredRate:
    """The idle rate for the config's accounts: measured when BENCHMARKS.md has it, else assumed.

    Idle replication work is per database (Litestream checks each one), so a figure measured on
    M databases is scaled to the config's accounts plus the PDS's top-level databases.
    """
    measured = None
    if benchmarks is not None and benchmarks.is_file():
        measured = parse_backup_idle_rate(benchmarks.read_text(encoding="utf-8"))
    if measured is None:
        return MeasuredRate(
            settings.backup_idle_requests_per_hour,
            "assumed ([cost] backup_idle_requests_per_hour; no measured figure in "
            f"{BENCHMARKS_FILE})",
        )
    from pds_aws.backup.layout import TOP_LEVEL_DATABASES

    databases = measured.databases or (
        measured.accounts + len(TOP_LEVEL_DATABASES) if measured.accounts else None
    )
    if not databases:
        return MeasuredRate(
            measured.requests_per_hour, f"measured, {BENCHMARKS_FILE} (scope not stated)"
        )
    ours = settings.accounts + len(TOP_LEVEL_DATABASES)
    return MeasuredRate(
        measured.requests_per_hour * ours / databases,
        f"{BENCHMARKS_FILE}: {measured.requests_per_hour:,g}/hour measured on {databases:,} "
        f"databases, scaled to {ours} ([cost] accounts = {settings.accounts})",
    )


# ---------------------------------------------------------------------------------------------
# Results


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
        }


# ---------------------------------------------------------------------------------------------
# Template helpers


def _refs(value: Any) -> Iterator[str]:
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
                    yield from _refs(inner[1:])
            else:
                yield from _refs(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _name(logical_id: str) -> str:
    """A logical id without CDK's 8-character hash suffix, for people to read."""
    return re.sub(r"(?<=[a-z0-9])[0-9A-F]{8}$", "", logical_id) or logical_id


def _ref_id(value: Any) -> str | None:
    return next(_refs(value), None)


def _count(value: Any) -> int:
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


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class FargateShape:
    vcpu: float
    memory_gb: float
    arm: bool
    ephemeral_gib: int


@dataclass
class _Context:
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


def _fargate_shape(ctx: _Context, task_definition_id: str) -> FargateShape:
    props = ctx.props(task_definition_id)
    arch = str(props.get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")).upper()
    ephemeral = int(props.get("EphemeralStorage", {}).get("SizeInGiB", FARGATE_FREE_EPHEMERAL_GIB))
    return FargateShape(
        vcpu=int(props["Cpu"]) / 1024,
        memory_gb=int(props["Memory"]) / 1024,
        arm=arch == "ARM64",
        ephemeral_gib=ephemeral,
    )


def _capacity_split(strategy: list[Mapping[str, Any]], tasks: float) -> dict[str, float]:
    """Tasks per capacity provider: each `Base` first, the rest by `Weight`."""
    split: dict[str, float] = {}
    remaining = tasks
    for item in strategy:
        base = min(float(item.get("Base", 0)), remaining)
        if base:
            split[item["CapacityProvider"]] = split.get(item["CapacityProvider"], 0) + base
            remaining -= base
    weights = {i["CapacityProvider"]: float(i.get("Weight", 0)) for i in strategy}
    total = sum(weights.values())
    if remaining and total:
        for provider, weight in weights.items():
            split[provider] = split.get(provider, 0) + remaining * weight / total
    return {p: n for p, n in split.items() if n}


def _fargate_charges(
    ctx: _Context,
    label: str,
    logical_ids: tuple[str, ...],
    shape: FargateShape,
    provider: str,
    task_hours: float,
    *,
    public_ip: bool,
    kind: Kind = Kind.FIXED,
) -> list[Charge]:
    spot = provider == "FARGATE_SPOT"
    arch = "arm" if shape.arm else "x86"
    prefix = f"fargate_spot_{arch}" if spot else f"fargate_{arch}"
    what = f"{'arm64' if shape.arm else 'x86_64'}, {'Spot' if spot else 'on-demand'}"
    charges = [
        Charge(
            f"{label}: Fargate vCPU ({shape.vcpu:g} vCPU, {what})",
            f"{prefix}_vcpu_hour",
            shape.vcpu * task_hours,
            kind,
            logical_ids,
        ),
        Charge(
            f"{label}: Fargate memory ({shape.memory_gb:g} GB, {what})",
            f"{prefix}_gb_hour",
            shape.memory_gb * task_hours,
            kind,
            logical_ids,
        ),
    ]
    extra = shape.ephemeral_gib - FARGATE_FREE_EPHEMERAL_GIB
    if extra > 0:
        charges.append(
            Charge(
                f"{label}: Fargate ephemeral storage ({shape.ephemeral_gib} GiB, 20 free)",
                "fargate_ephemeral_gb_hour",
                extra * task_hours,
                kind,
                logical_ids,
            )
        )
    if public_ip:
        charges.append(
            Charge(
                f"{label}: public IPv4 address", "public_ipv4_hour", task_hours, kind, logical_ids
            )
        )
    return charges


def _cluster_default_strategy(ctx: _Context, cluster_ref: Any) -> list[Mapping[str, Any]]:
    cluster = _ref_id(cluster_ref)
    for _, assoc in ctx.of_type("AWS::ECS::ClusterCapacityProviderAssociations"):
        props = assoc.get("Properties", {})
        if cluster is None or _ref_id(props.get("Cluster")) == cluster:
            strategy: list[Mapping[str, Any]] = props.get("DefaultCapacityProviderStrategy", [])
            return strategy
    return []


def _public_ip(props: Mapping[str, Any]) -> bool:
    network = props.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
    return str(network.get("AssignPublicIp", "DISABLED")).upper() == "ENABLED"


def _price_ecs_service(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    task_definition = _ref_id(props.get("TaskDefinition"))
    if task_definition is None or task_definition not in ctx.resources:
        ctx.unpriced.append(
            Unpriced(logical_id, res["Type"], "task definition not in this template")
        )
        return
    tasks = float(props.get("DesiredCount", 1))
    strategy = props.get("CapacityProviderStrategy") or (
        [{"CapacityProvider": props["LaunchType"], "Weight": 1}]
        if props.get("LaunchType")
        else _cluster_default_strategy(ctx, props.get("Cluster"))
    )
    if not strategy:
        strategy = [{"CapacityProvider": "FARGATE", "Weight": 1}]
    shape = _fargate_shape(ctx, task_definition)
    for provider, count in _capacity_split(strategy, tasks).items():
        if provider not in ("FARGATE", "FARGATE_SPOT"):
            ctx.unpriced.append(Unpriced(logical_id, res["Type"], f"capacity provider {provider}"))
            continue
        ctx.add(
            *_fargate_charges(
                ctx,
                f"ECS service {_name(logical_id)}",
                (logical_id, task_definition),
                shape,
                provider,
                count * ctx.hours,
                public_ip=_public_ip(props),
            )
        )


def _price_events_rule(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    schedule = props.get("ScheduleExpression")
    if not schedule:
        sources = props.get("EventPattern", {}).get("source", [])
        if sources and all(str(source).startswith("aws.") for source in sources):
            # Events that AWS services emit (e.g. ECS task state changes) are delivered free.
            ctx.free.append((logical_id, res["Type"], "matches AWS service events, delivered free"))
        else:
            ctx.unpriced.append(
                Unpriced(logical_id, res["Type"], "custom-event rule (not modeled)")
            )
        return
    runs = runs_per_month(str(schedule), ctx.hours)
    ctx.add(
        Charge(
            "EventBridge scheduled events (upper bound)",
            "eventbridge_event",
            runs,
            Kind.FIXED,
            (logical_id,),
        )
    )
    for target in props.get("Targets", []):
        ecs_params = target.get("EcsParameters")
        if not ecs_params:
            continue
        task_definition = _ref_id(ecs_params.get("TaskDefinitionArn"))
        if task_definition is None or task_definition not in ctx.resources:
            ctx.unpriced.append(Unpriced(logical_id, res["Type"], "scheduled task not in template"))
            continue
        count = float(ecs_params.get("TaskCount", 1))
        strategy = ecs_params.get("CapacityProviderStrategy") or [
            {"CapacityProvider": ecs_params.get("LaunchType", "FARGATE"), "Weight": 1}
        ]
        hours = runs * count * ctx.usage.restore_drill_minutes / 60
        for provider, share in _capacity_split(strategy, 1.0).items():
            ctx.add(
                *_fargate_charges(
                    ctx,
                    f"Scheduled task {_name(logical_id)} ({runs:.1f} runs a month)",
                    (logical_id, task_definition),
                    _fargate_shape(ctx, task_definition),
                    provider,
                    hours * share,
                    public_ip=_public_ip(ecs_params),
                )
            )


def _price_load_balancer(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    ids = (logical_id,)
    ctx.add(
        Charge(
            f"Application Load Balancer {_name(logical_id)}", "alb_hour", ctx.hours, Kind.FIXED, ids
        )
    )
    ctx.add(
        Charge(
            f"ALB capacity units ({ctx.usage.alb_lcu:g} LCU average)",
            "alb_lcu_hour",
            ctx.usage.alb_lcu * ctx.hours,
            Kind.VARIABLE,
            ids,
        )
    )
    internal = props.get("Scheme") == "internal"
    no_ipv4 = props.get("IpAddressType") == "dualstack-without-public-ipv4"
    if not internal and not no_ipv4:
        zones = _count(props.get("Subnets")) or _count(props.get("SubnetMappings"))
        ctx.add(
            Charge(
                f"ALB public IPv4 addresses (one per AZ, {zones} AZs)",
                "public_ipv4_hour",
                zones * ctx.hours,
                Kind.FIXED,
                ids,
            )
        )


def _price_kms_key(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    ctx.add(Charge("KMS keys", "kms_key_month", 1, Kind.FIXED, (logical_id,)))
    spec = str(props.get("KeySpec", "SYMMETRIC_DEFAULT"))
    if props.get("KeyUsage") == "SIGN_VERIFY" or spec.startswith(("ECC", "RSA")):
        ctx.add(
            Charge(
                f"KMS sign requests ({spec}, PLC operations)",
                "kms_asymmetric_request",
                ctx.usage.plc_signatures_per_month,
                Kind.VARIABLE,
                (logical_id,),
            )
        )


def _price_secret(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(Charge("Secrets Manager secrets", "secret_month", 1, Kind.FIXED, (logical_id,)))


def _price_hosted_zone(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge("Route 53 hosted zones", "route53_hosted_zone_month", 1, Kind.FIXED, (logical_id,))
    )


def _price_alarm(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    metrics = props.get("Metrics")
    count = sum(1 for m in metrics if "MetricStat" in m) if metrics else 1
    high_resolution = int(props.get("Period", 60) or 60) < 60
    key = (
        "cloudwatch_high_resolution_alarm_metric_month"
        if high_resolution
        else ("cloudwatch_alarm_metric_month")
    )
    pool = None if high_resolution else "cloudwatch_alarm_metrics"
    ctx.add(Charge("CloudWatch alarm metrics", key, count, Kind.FIXED, (logical_id,), pool))


def _price_composite_alarm(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "CloudWatch composite alarms",
            "cloudwatch_composite_alarm_month",
            1,
            Kind.FIXED,
            (logical_id,),
        )
    )


def _price_dashboard(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "CloudWatch dashboards",
            "cloudwatch_dashboard_month",
            1,
            Kind.FIXED,
            (logical_id,),
            "cloudwatch_dashboards",
        )
    )


def _price_metric_filter(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    count = len(res.get("Properties", {}).get("MetricTransformations", [])) or 1
    ctx.add(
        Charge(
            "CloudWatch custom metrics (log metric filters)",
            "cloudwatch_custom_metric_month",
            count,
            Kind.FIXED,
            (logical_id,),
            "cloudwatch_custom_metrics",
        )
    )


def _price_log_groups(ctx: _Context) -> None:
    groups = ctx.of_type("AWS::Logs::LogGroup")
    if not groups:
        return
    ids = tuple(i for i, _ in groups)
    retention = [g.get("Properties", {}).get("RetentionInDays") for _, g in groups]
    days = max(int(r) if r else UNBOUNDED_LOG_RETENTION_DAYS for r in retention)
    ingest = ctx.usage.log_ingestion_gb_per_month
    note = "" if all(retention) else "a log group never expires; a year of logs assumed"
    ctx.add(
        Charge(
            f"CloudWatch Logs ingestion ({len(ids)} log groups)",
            "cloudwatch_logs_ingest_gb",
            ingest,
            Kind.VARIABLE,
            ids,
            "cloudwatch_logs_gb",
        ),
        Charge(
            f"CloudWatch Logs storage ({days} days kept)",
            "cloudwatch_logs_storage_gb_month",
            ingest * days / DAYS_PER_MONTH,
            Kind.VARIABLE,
            ids,
            "cloudwatch_logs_gb",
            note,
        ),
    )


def _bucket_roles(ctx: _Context) -> dict[str, str]:
    """Which bucket holds blobs and which backups, read from the task definitions' env."""
    roles: dict[str, str] = {}
    for _, task_definition in ctx.of_type("AWS::ECS::TaskDefinition"):
        for container in task_definition.get("Properties", {}).get("ContainerDefinitions", []):
            for env in container.get("Environment", []):
                role = {"PDS_BLOBSTORE_S3_BUCKET": "blob", "BACKUP_URL": "backup"}.get(env["Name"])
                if role:
                    for ref in _refs(env.get("Value")):
                        roles.setdefault(ref, role)
    return roles


def _price_buckets(ctx: _Context) -> None:
    roles = _bucket_roles(ctx)
    usage = ctx.usage
    for logical_id, _ in ctx.of_type("AWS::S3::Bucket"):
        ids = (logical_id,)
        role = roles.get(logical_id, "other")
        if role == "blob":
            ctx.add(
                Charge(
                    "S3 blob storage",
                    "s3_standard_gb_month",
                    usage.blob_storage_gb,
                    Kind.VARIABLE,
                    ids,
                ),
                Charge(
                    "S3 blob uploads",
                    "s3_write_request",
                    usage.blob_write_requests_per_month,
                    Kind.VARIABLE,
                    ids,
                ),
                Charge(
                    "S3 blob reads",
                    "s3_read_request",
                    usage.blob_read_requests_per_month,
                    Kind.VARIABLE,
                    ids,
                ),
            )
        elif role == "backup":
            idle = ctx.backup_idle
            ctx.add(
                Charge(
                    "S3 backup storage",
                    "s3_standard_gb_month",
                    usage.backup_storage_gb,
                    Kind.VARIABLE,
                    ids,
                ),
                Charge(
                    f"S3 backup idle requests ({idle.requests_per_hour:,.4g}/hour)",
                    "s3_write_request",
                    idle.requests_per_hour * ctx.hours,
                    Kind.FIXED,
                    ids,
                    note=idle.source,
                ),
                Charge(
                    "S3 backup uploads while accounts write",
                    "s3_write_request",
                    usage.backup_write_requests_per_month,
                    Kind.VARIABLE,
                    ids,
                ),
            )
        else:
            ctx.add(
                Charge(
                    f"S3 bucket {_name(logical_id)} storage",
                    "s3_standard_gb_month",
                    usage.other_bucket_storage_gb,
                    Kind.VARIABLE,
                    ids,
                )
            )


def _price_email_identity(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "SES e-mails (account confirmation, password reset)",
            "ses_email",
            ctx.usage.emails_per_month,
            Kind.VARIABLE,
            (logical_id,),
        )
    )


def _price_topic(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    inline = [
        s for s in res.get("Properties", {}).get("Subscription", []) if s.get("Protocol") == "email"
    ]
    separate = [
        i
        for i, s in ctx.of_type("AWS::SNS::Subscription")
        if s.get("Properties", {}).get("Protocol") == "email"
        and _ref_id(s.get("Properties", {}).get("TopicArn")) == logical_id
    ]
    subscribers = len(inline) + len(separate)
    ctx.add(
        Charge(
            f"SNS alarm e-mails ({subscribers} subscribers)",
            "sns_email_notification",
            ctx.usage.alarm_notifications_per_month * subscribers,
            Kind.VARIABLE,
            (logical_id,),
            "sns_email_notifications",
        )
    )


def _price_ecr_repository(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "ECR image storage",
            "ecr_gb_month",
            ctx.usage.container_image_gb,
            Kind.FIXED,
            (logical_id,),
        )
    )


def _price_codebuild(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    env = res.get("Properties", {}).get("Environment", {})
    size = str(env.get("ComputeType", "")).removeprefix("BUILD_GENERAL1_").lower()
    arm = str(env.get("Type", "")).startswith("ARM")
    key = f"codebuild_arm1_{size}_minute" if arm else f"codebuild_general1_{size}_minute"
    if key not in ctx.prices.prices:
        ctx.unpriced.append(Unpriced(logical_id, res["Type"], f"compute type {env}"))
        return
    ctx.add(
        Charge(
            f"CodeBuild image builds ({ctx.usage.deploys_per_month:g} deploys)",
            key,
            ctx.usage.deploys_per_month * ctx.usage.image_build_minutes,
            Kind.VARIABLE,
            (logical_id,),
            "codebuild_small_minutes" if size == "small" else None,
        )
    )


def _price_lambda(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    arm = "arm64" in props.get("Architectures", [])
    invocations = ctx.usage.deploys_per_month * CUSTOM_RESOURCE_INVOCATIONS_PER_DEPLOY
    memory_gb = float(props.get("MemorySize", 128)) / 1024
    ids = (logical_id,)
    ctx.add(
        Charge(
            "Lambda requests (deploy-time functions)",
            "lambda_request",
            invocations,
            Kind.VARIABLE,
            ids,
            "lambda_requests",
        ),
        Charge(
            f"Lambda compute, {'arm64' if arm else 'x86_64'} (deploy-time functions)",
            "lambda_arm_gb_second" if arm else "lambda_x86_gb_second",
            invocations * CUSTOM_RESOURCE_SECONDS * memory_gb,
            Kind.VARIABLE,
            ids,
            "lambda_gb_seconds",
        ),
    )


def _price_vpc_endpoint(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    if props.get("VpcEndpointType", "Gateway") == "Gateway":
        ctx.notes.append(f"{logical_id}: gateway VPC endpoint, free")
        return
    zones = _count(props.get("SubnetIds"))
    ctx.add(
        Charge(
            "Interface VPC endpoints",
            "interface_endpoint_hour",
            zones * ctx.hours,
            Kind.FIXED,
            (logical_id,),
        )
    )


def _price_nat_gateway(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(Charge("NAT gateways", "nat_gateway_hour", ctx.hours, Kind.FIXED, (logical_id,)))


def _price_eip(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge("Elastic IP addresses", "public_ipv4_hour", ctx.hours, Kind.FIXED, (logical_id,))
    )


def _price_cluster(ctx: _Context, logical_id: str, res: Mapping[str, Any]) -> None:
    settings = res.get("Properties", {}).get("ClusterSettings", [])
    insights = [s for s in settings if s.get("Name") == "containerInsights"]
    if not insights or insights[0].get("Value") not in ("enabled", "enhanced"):
        return
    if insights[0].get("Value") == "enhanced":
        ctx.unpriced.append(
            Unpriced(logical_id, res["Type"], "Container Insights with enhanced observability")
        )
        return
    per = ctx.prices.container_insights
    services = [
        i
        for i, s in ctx.of_type("AWS::ECS::Service")
        if _ref_id(s.get("Properties", {}).get("Cluster")) in (logical_id, None)
    ]
    families = len(ctx.of_type("AWS::ECS::TaskDefinition"))
    metrics = (
        per["per_cluster"] + per["per_service"] * len(services) + per["per_task_family"] * families
    )
    ctx.add(
        Charge(
            "ECS Container Insights metrics (approximate count)",
            "cloudwatch_custom_metric_month",
            metrics,
            Kind.FIXED,
            (logical_id,),
            "cloudwatch_custom_metrics",
            "ECS service CPU/memory metrics are free without Container Insights",
        )
    )


Handler = Callable[[_Context, str, Mapping[str, Any]], None]

# Priced per resource. Buckets and log groups are priced per stack (their usage assumptions are
# stack-wide); see _STACK_PRICED.
_HANDLERS: dict[str, Handler] = {
    "AWS::ECS::Service": _price_ecs_service,
    "AWS::Events::Rule": _price_events_rule,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _price_load_balancer,
    "AWS::KMS::Key": _price_kms_key,
    "AWS::SecretsManager::Secret": _price_secret,
    "AWS::Route53::HostedZone": _price_hosted_zone,
    "AWS::CloudWatch::Alarm": _price_alarm,
    "AWS::CloudWatch::CompositeAlarm": _price_composite_alarm,
    "AWS::CloudWatch::Dashboard": _price_dashboard,
    "AWS::Logs::MetricFilter": _price_metric_filter,
    "AWS::SES::EmailIdentity": _price_email_identity,
    "AWS::SNS::Topic": _price_topic,
    "AWS::ECR::Repository": _price_ecr_repository,
    "AWS::CodeBuild::Project": _price_codebuild,
    "AWS::Lambda::Function": _price_lambda,
    "AWS::EC2::VPCEndpoint": _price_vpc_endpoint,
    "AWS::EC2::NatGateway": _price_nat_gateway,
    "AWS::EC2::EIP": _price_eip,
    "AWS::ECS::Cluster": _price_cluster,
}
_STACK_PRICED: dict[str, Callable[[_Context], None]] = {
    "AWS::S3::Bucket": _price_buckets,
    "AWS::Logs::LogGroup": _price_log_groups,
}


def priced_types() -> frozenset[str]:
    """Resource types the model prices (the free ones are in the price data)."""
    return frozenset(_HANDLERS) | frozenset(_STACK_PRICED)


def _stack_level_charges(ctx: _Context) -> None:
    types = {r.get("Type") for r in ctx.resources.values()}
    internet_facing = any(
        t in types for t in ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ECS::Service")
    )
    if internet_facing:
        ctx.add(
            Charge(
                "Data transfer out to the internet",
                "data_transfer_out_gb",
                ctx.usage.data_transfer_out_gb_per_month,
                Kind.VARIABLE,
                (),
                "data_transfer_out_gb",
            )
        )
    if "AWS::Route53::HostedZone" not in types:
        ctx.add(
            Charge(
                f"Route 53 hosted zone {ctx.config.pds.hosted_zone_name} (exists already; "
                "counted as the reference does)",
                "route53_hosted_zone_month",
                1,
                Kind.FIXED,
            )
        )
    images = [
        c.get("Image")
        for _, td in ctx.of_type("AWS::ECS::TaskDefinition")
        for c in td.get("Properties", {}).get("ContainerDefinitions", [])
    ]
    if "AWS::ECR::Repository" not in types and any("container-assets" in str(i) for i in images):
        ctx.add(
            Charge(
                "ECR image storage (CDK assets repository)",
                "ecr_gb_month",
                ctx.usage.container_image_gb,
                Kind.FIXED,
            )
        )


def _aggregate(ctx: _Context) -> list[LineItem]:
    merged: dict[tuple[str, str, Kind, str | None], Charge] = {}
    for charge in ctx.charges:
        key = (charge.label, charge.price_key, charge.kind, charge.free_pool)
        if key in merged:
            old = merged[key]
            merged[key] = Charge(
                old.label,
                old.price_key,
                old.quantity + charge.quantity,
                old.kind,
                old.logical_ids + charge.logical_ids,
                old.free_pool,
                "; ".join(n for n in dict.fromkeys((old.note, charge.note)) if n),
            )
        else:
            merged[key] = charge
    allowance = dict(ctx.prices.free_tier) if ctx.usage.use_free_tier else {}
    lines = []
    for charge in merged.values():
        price = ctx.prices[charge.price_key]
        free = 0.0
        if charge.free_pool is not None:
            free = min(charge.quantity, allowance.get(charge.free_pool, 0.0))
            allowance[charge.free_pool] = allowance.get(charge.free_pool, 0.0) - free
        count = len(dict.fromkeys(charge.logical_ids))
        label = charge.label
        if count > 1 and charge.price_key not in ("public_ipv4_hour",) and "(" not in label:
            label = f"{label} ({count})"
        note = charge.note
        if free:
            note = "; ".join(n for n in (f"{_quantity(free)} free (always-free tier)", note) if n)
        lines.append(
            LineItem(
                resource=label,
                logical_ids=tuple(dict.fromkeys(charge.logical_ids)),
                quantity=charge.quantity,
                unit=price.per,
                unit_price=price.usd,
                free_quantity=free,
                monthly=(charge.quantity - free) * price.usd,
                kind=charge.kind,
                price_key=charge.price_key,
                note=note,
            )
        )
    lines.sort(key=lambda line: line.kind is Kind.VARIABLE)  # stable: fixed first
    return lines


def estimate(
    template: Mapping[str, Any],
    config: Config,
    *,
    prices: PriceBook | None = None,
    backup_idle: MeasuredRate | None = None,
) -> Estimate:
    """Price every resource of a synthesized template under the config's usage assumptions."""
    prices = prices or load_prices(config.aws.region)
    ctx = _Context(
        resources=template.get("Resources", {}),
        config=config,
        prices=prices,
        backup_idle=backup_idle or backup_idle_rate(config.cost, None),
    )
    for logical_id, res in ctx.resources.items():
        resource_type = str(res.get("Type"))
        handler = _HANDLERS.get(resource_type)
        if handler is not None:
            handler(ctx, logical_id, res)
        elif resource_type in _STACK_PRICED:
            continue
        elif (reason := prices.free_reason(resource_type)) is not None:
            ctx.free.append((logical_id, resource_type, reason))
        else:
            ctx.unpriced.append(Unpriced(logical_id, resource_type, "type not in the cost model"))
    present = {str(r.get("Type")) for r in ctx.resources.values()}
    for resource_type, stack_handler in _STACK_PRICED.items():
        if resource_type in present:
            stack_handler(ctx)
    _stack_level_charges(ctx)
    return Estimate(
        region=prices.region,
        hours_per_month=prices.hours_per_month,
        lines=tuple(_aggregate(ctx)),
        unpriced=tuple(ctx.unpriced),
        free=tuple(ctx.free),
        notes=tuple(ctx.notes),
        reference_monthly=prices.reference_monthly,
        reference_name=prices.reference_name,
        assumptions=config.cost.model_dump(),
    )


def benchmarks_path(config: Config) -> Path:
    """BENCHMARKS.md next to the config file, else the project's own."""
    beside = config.source.resolve().parent / BENCHMARKS_FILE
    return beside if beside.is_file() else REPO_ROOT / BENCHMARKS_FILE


def estimate_config(config: Config) -> Estimate:
    """Synthesize the stack of `config` and price it."""
    from pds_aws.infra.synth import synthesize

    return estimate(
        synthesize(config),
        config,
        backup_idle=backup_idle_rate(config.cost, benchmarks_path(config)),
    )


# ---------------------------------------------------------------------------------------------
# Presentation


def _usd(value: float) -> str:
    if value and abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def _unit_price(value: float) -> str:
    digits = f"{value:.10f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${int(whole):,}.{fraction.ljust(2, '0')}"


def _quantity(value: float) -> str:
    if value % 1 == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def table_rows(est: Estimate) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            line.resource,
            f"{_quantity(line.quantity)} {line.unit.split(' (')[0]}",
            _unit_price(line.unit_price),
            _usd(line.monthly),
            line.note,
        )
        for line in est.lines
    ]


def summary_lines(est: Estimate) -> list[str]:
    saving = est.reference_monthly - est.fixed_monthly
    return [
        f"Fixed monthly:    {_usd(est.fixed_monthly)}   (reference: ${est.reference_monthly:.2f}, "
        f"{est.reference_name}; {'saves' if saving >= 0 else 'costs'} {_usd(abs(saving))})",
        f"Variable monthly: {_usd(est.variable_monthly)}   (usage: [cost] in the config)",
        f"Total monthly:    {_usd(est.total_monthly)}",
    ]


def render_table(est: Estimate) -> str:
    """The plain-text estimate `pds-aws cost` prints."""
    header = ("Resource", "Quantity", "Unit price", "Monthly", "Note")
    rows = table_rows(est)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            row[1].rjust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].rjust(widths[3]),
        ]
        return "  ".join(cells) + (f"  {row[4]}" if row[4] else "")

    out = [
        f"Monthly estimate, {est.region}, {est.hours_per_month:g} h/month, USD, list prices",
        "",
        fmt(header),
        "  ".join("-" * w for w in widths),
    ]
    kind: Kind | None = None
    for line, row in zip(est.lines, rows, strict=True):
        if line.kind is not kind:
            kind = line.kind
            out.append(f"[{kind.value}]")
        out.append(fmt(row))
    out += ["", *summary_lines(est)]
    if est.unpriced:
        out += ["", "UNPRICED (not in the total; add them to the cost model):"]
        out += [f"  {u.logical_id} ({u.resource_type}): {u.why}" for u in est.unpriced]
    else:
        out += [
            "",
            f"Unpriced resources: none ({len(est.free)} resources cost nothing by themselves).",
        ]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The generated guide


@dataclass(frozen=True)
class Shape:
    name: str
    config_lines: tuple[str, ...]  # what the operator writes in the config
    overrides: Mapping[str, Mapping[str, Any]]  # section -> settings
    trade_off: str


SPOT_TRADE_OFF = (
    "AWS may reclaim a Spot task with a two-minute notice: ECS sends SIGTERM, the backup "
    "sidecar makes its final sync (nothing acknowledged is lost), and the service starts a new "
    "task that restores from S3. The PDS is down for that restart (a few minutes) and, when Spot "
    "capacity is short, until it returns. Spot prices float."
)
SHAPES: tuple[Shape, ...] = (
    Shape(
        "Default",
        (),
        {},
        "0.5 vCPU / 1 GiB arm64 on-demand, the size measured to fit the PDS and the backup "
        "sidecar with 20 accounts under load (BENCHMARKS.md, Task size).",
    ),
    Shape("Fargate Spot", ("[task] spot = true",), {"task": {"spot": True}}, SPOT_TRADE_OFF),
    Shape(
        "0.25 vCPU",
        ("[task] cpu = 256",),
        {"task": {"cpu": 256}},
        "Same memory, a quarter of a vCPU. The measured load used more than that at its peaks, "
        "so sign-ups, bursts of posts and the restore after a task replacement run slower; fine "
        "for a few quiet accounts.",
    ),
    Shape(
        "Spot + 0.25 vCPU (cheapest)",
        ("[task] spot = true", "[task] cpu = 256"),
        {"task": {"spot": True, "cpu": 256}},
        "Both trade-offs above.",
    ),
    Shape(
        "2 GiB memory",
        ("[task] memory = 2048",),
        {"task": {"memory": 2048}},
        "Headroom for more accounts or larger repositories than the measured 20.",
    ),
    Shape(
        "Container Insights on",
        ("[monitoring] container_insights = true",),
        {"monitoring": {"container_insights": True}},
        "Task-level CPU, memory, network and storage metrics, billed as custom metrics. The "
        "alarms and the dashboard do not need them.",
    ),
    Shape(
        "Reference's shape",
        ("[task] cpu = 1024", "[task] memory = 2048", '[task] architecture = "x86_64"'),
        {"task": {"cpu": 1024, "memory": 2048, "architecture": Architecture.X86_64}},
        "The reference's 1 vCPU / 2 GB x86 task in this stack, for a like-for-like comparison.",
    ),
    Shape(
        "Default in us-east-1",
        ('[aws] region = "us-east-1"',),
        {"aws": {"region": "us-east-1"}},
        "N. Virginia lists the same prices as Ohio for everything this stack uses.",
    ),
)


def _markdown_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def shape_config(config: Config, shape: Shape) -> Config:
    """`config` with the shape's settings, validated like a config file."""
    from pds_aws.config import parse_config

    data = config.model_dump(mode="json", exclude={"source"})
    for section, settings in shape.overrides.items():
        data[section] = {
            **data[section],
            **{k: v.value if isinstance(v, Enum) else v for k, v in settings.items()},
        }
    return parse_config(data, config.source)


def render_guide(
    config: Config, estimates: Mapping[str, Estimate], shapes: Iterable[Shape] = SHAPES
) -> str:
    """guides/COST.md from estimates of each shape (keyed by shape name)."""
    shapes = list(shapes)
    default = estimates[shapes[0].name]
    task = config.task
    out = [
        "# What pds-aws costs a month",
        "",
        "<!-- Generated by `make cost-guide` (python -m pds_aws.cost.model --write-guide) from "
        "pds.example.toml, the synthesized template and src/pds_aws/cost/prices.toml. "
        "Do not edit: a unit test fails when this file and the model disagree. -->",
        "",
        "Every figure here is computed by `pds-aws cost` from the CloudFormation template the "
        "config would deploy: each resource in the template is priced, listed as free (IAM, "
        "subnets, security groups...), or reported as unpriced. Run `pds-aws cost -c pds.toml` "
        "for your own config and `--json` for a machine-readable estimate.",
        "",
        f"Region {default.region}, list prices (Linux, on-demand unless Spot), "
        f"{default.hours_per_month:g}-hour months. The reference "
        f"({default.reference_name}) is ${default.reference_monthly:.2f} fixed a month with "
        "720-hour months and December 2024 prices.",
        "",
        "## Shapes, each one config line away",
        "",
    ]
    rows = []
    for shape in shapes:
        est = estimates[shape.name]
        rows.append(
            (
                shape.name,
                "<br>".join(f"`{line}`" for line in shape.config_lines) or "(none)",
                _usd(est.fixed_monthly),
                _usd(est.total_monthly),
                f"{_usd(default.reference_monthly - est.fixed_monthly)} less"
                if est.fixed_monthly <= default.reference_monthly
                else f"{_usd(est.fixed_monthly - default.reference_monthly)} more",
            )
        )
    out += _markdown_table(
        (
            "Shape",
            "Config",
            "Fixed / month",
            "Total / month",
            f"vs reference ${default.reference_monthly:.2f}",
        ),
        rows,
    )
    cheapest = min(shapes, key=lambda s: estimates[s.name].fixed_monthly)
    idle = [line for line in default.lines if line.resource.startswith("S3 backup idle")]
    idle_monthly = sum(line.monthly for line in idle)
    cloudwatch_monthly = sum(
        line.monthly
        for line in default.lines
        if line.price_key
        in (
            "cloudwatch_alarm_metric_month",
            "cloudwatch_dashboard_month",
            "cloudwatch_custom_metric_month",
        )
    )
    out += [
        "",
        f"Default: {task.cpu / 1024:g} vCPU / {task.memory / 1024:g} GiB, "
        f"{task.architecture.value}, {'Spot' if task.spot else 'on-demand'}: "
        f"**{_usd(default.fixed_monthly)} fixed a month** against the reference's "
        f"${default.reference_monthly:.2f}. Cheapest documented shape: {cheapest.name}, "
        f"**{_usd(estimates[cheapest.name].fixed_monthly)}**.",
        "",
        "### Trade-offs",
        "",
    ]
    out += [f"- **{s.name}**: {s.trade_off}" for s in shapes]
    out += [
        "",
        "### Savings that cost nothing in resilience or security (already in the default)",
        "",
        "- ARM64 (Graviton) Fargate: about 20 % less than x86 for the same size; the official "
        "PDS image is multi-architecture.",
        "- A task size chosen from the PDS's measured memory and CPU (BENCHMARKS.md) rather "
        "than 1 vCPU / 2 GB.",
        "- No NAT gateway (public subnets, the task has its own public address): a NAT gateway "
        "would cost more than the task.",
        "- S3 reached through a free gateway endpoint; secrets and buckets encrypted with "
        "AWS-managed keys (no extra KMS key-months); the one customer key is the PLC rotation key.",
        *(
            [
                "- Alarms, metric filters and dashboards within CloudWatch's always-free "
                "allowances; log retention from `[monitoring] log_retention_days`."
            ]
            if cloudwatch_monthly == 0
            else []
        ),
        "- ECS Container Insights off by default (`[monitoring] container_insights`): the alarms "
        "and the dashboard use the free AWS/ECS service and ALB metrics.",
        *(
            [
                f"- Idle backup replication: {_usd(idle_monthly)} a month of S3 requests "
                f"({idle[0].note})."
            ]
            if idle and idle_monthly < IDLE_BACKUP_NEAR_ZERO_USD
            else []
        ),
        "",
        *(
            [
                "### Known cost problem",
                "",
                f"The backup sidecar's idle S3 requests cost **{_usd(idle_monthly)} a month** "
                f"in the default config ({idle[0].note}); DESIGN.md asks for close to zero. "
                f"Without them the default's fixed cost would be "
                f"{_usd(default.fixed_monthly - idle_monthly)}. The figure updates with the "
                "next measurement in BENCHMARKS.md (`make cost-guide`).",
                "",
            ]
            if idle and idle_monthly >= IDLE_BACKUP_NEAR_ZERO_USD
            else []
        ),
        f"## The default config in detail ({default.region})",
        "",
    ]
    out += _markdown_table(
        ("Resource", "Quantity", "Unit price", "Monthly", "Kind", "Note"),
        (
            (r[0], r[1], r[2], r[3], line.kind.value, r[4])
            for line, r in zip(default.lines, table_rows(default), strict=True)
        ),
    )
    out += [
        "",
        f"Fixed {_usd(default.fixed_monthly)} + variable {_usd(default.variable_monthly)} = "
        f"**{_usd(default.total_monthly)}** a month.",
        "",
        "Unpriced resources: "
        + (
            "; ".join(f"{u.logical_id} ({u.resource_type}, {u.why})" for u in default.unpriced)
            or "none"
        )
        + ". Free: "
        + ", ".join(sorted({t for _, t, _ in default.free}))
        + " (the reason for each is in prices.toml or `pds-aws cost --json`).",
        "",
        "## Usage assumptions (`[cost]` in the config)",
        "",
        "Fixed costs accrue with the PDS idle; variable costs follow these assumptions, which "
        "you can change in your config:",
        "",
    ]
    out += _markdown_table(
        ("Setting", "Default"),
        (
            (k, f"{v:,}" if not isinstance(v, bool) else str(v).lower())
            for k, v in default.assumptions.items()
        ),
    )
    backup_lines = [line for line in default.lines if line.resource.startswith("S3 backup idle")]
    if backup_lines:
        out += ["", f"Backup sidecar idle requests: {backup_lines[0].note}."]
    out += [
        "",
        "## Prices",
        "",
        "All prices live in `src/pds_aws/cost/prices.toml`, one line per price with its source "
        "page and date; regions priced: " + ", ".join(price_regions()) + ". Fargate Spot prices "
        "float; re-check them on the Fargate pricing page.",
        "",
    ]
    return "\n".join(out)


Synthesizer = Callable[[Config], Mapping[str, Any]]


def estimate_shapes(
    config: Config, synthesize: Synthesizer, shapes: Iterable[Shape] = SHAPES
) -> dict[str, Estimate]:
    """Each documented shape of `config`, synthesized and priced."""
    bench = benchmarks_path(config)
    estimates = {}
    for shape in shapes:
        shaped = shape_config(config, shape)
        estimates[shape.name] = estimate(
            synthesize(shaped), shaped, backup_idle=backup_idle_rate(shaped.cost, bench)
        )
    return estimates


def build_guide(config: Config, synthesize: Synthesizer | None = None) -> str:
    """guides/COST.md for `config` (the project's example config)."""
    if synthesize is None:
        from pds_aws.infra import synth

        synthesize = synth.synthesize
    return render_guide(config, estimate_shapes(config, synthesize))


def main(argv: list[str] | None = None) -> int:
    from pds_aws.config import ConfigError, load_config
    from pds_aws.names import EXAMPLE_CONFIG_FILE

    parser = argparse.ArgumentParser(prog="python -m pds_aws.cost.model", description=__doc__)
    parser.add_argument("--config", default=str(REPO_ROOT / EXAMPLE_CONFIG_FILE))
    parser.add_argument("--write-guide", action="store_true", help=f"regenerate {GUIDE_FILE}")
    parser.add_argument("--check-guide", action="store_true", help=f"fail if {GUIDE_FILE} is stale")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = REPO_ROOT / GUIDE_FILE
    if args.write_guide or args.check_guide:
        guide = build_guide(config)
        if args.check_guide:
            current = path.read_text(encoding="utf-8") if path.is_file() else ""
            if current != guide:
                print(f"{GUIDE_FILE} is stale; run `make cost-guide`", file=sys.stderr)
                return 1
            print(f"{GUIDE_FILE} is up to date")
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(guide, encoding="utf-8")
        print(f"wrote {GUIDE_FILE}")
        return 0
    print(render_table(estimate_config(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
