"""The monthly AWS bill of what a config would deploy, priced from the synthesized template.

The model reads the CloudFormation template (`infra.synth.synthesize`), not a hand-kept list,
so the estimate follows every change to the stack. Prices are data (`prices.py` reads
`prices.toml`, dated, with a source per line); measured figures are data too (`measured.py`
reads `measured.json`, written by the benchmarks); usage assumptions are the config's `[cost]`
section. Each resource type is priced by its service's module (`compute`, `network`, `storage`,
`monitoring`), listed as free in the price data (with the reason), or reported as unpriced:
nothing is skipped silently. The table is `table.py`, the shapes `shapes.py`, guides/COST.md
`guide.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pds_aws.config import Config
from pds_aws.cost import compute, monitoring, network, pipeline, storage
from pds_aws.cost.context import Handler, PricingContext
from pds_aws.cost.measured import MeasuredRate, backup_idle_rate, read_idle_measurement
from pds_aws.cost.prices import PriceBook, PricingError, load_prices
from pds_aws.cost.results import Charge, Estimate, Kind, LineItem, Unpriced
from pds_aws.cost.table import quantity

# Priced per resource. Buckets and log groups are priced per stack (their usage assumptions are
# stack-wide); see _STACK_PRICED.
_HANDLERS: dict[str, Handler] = {
    "AWS::ECS::Service": compute.price_ecs_service,
    "AWS::Events::Rule": compute.price_events_rule,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": network.price_load_balancer,
    "AWS::KMS::Key": storage.price_kms_key,
    "AWS::SecretsManager::Secret": storage.price_secret,
    "AWS::Route53::HostedZone": network.price_hosted_zone,
    "AWS::CloudWatch::Alarm": monitoring.price_alarm,
    "AWS::CloudWatch::CompositeAlarm": monitoring.price_composite_alarm,
    "AWS::CloudWatch::Dashboard": monitoring.price_dashboard,
    "AWS::Logs::MetricFilter": monitoring.price_metric_filter,
    "AWS::SES::EmailIdentity": monitoring.price_email_identity,
    "AWS::SNS::Topic": monitoring.price_topic,
    "AWS::ECR::Repository": storage.price_ecr_repository,
    "AWS::CodeBuild::Project": compute.price_codebuild,
    "AWS::Lambda::Function": compute.price_lambda,
    "AWS::EC2::VPCEndpoint": network.price_vpc_endpoint,
    "AWS::EC2::NatGateway": network.price_nat_gateway,
    "AWS::EC2::EIP": network.price_eip,
    "AWS::ECS::Cluster": compute.price_cluster,
    "AWS::Route53::HealthCheck": network.price_health_check,
    "AWS::CodePipeline::Pipeline": pipeline.price_pipeline,
}
_STACK_PRICED: dict[str, Callable[[PricingContext], None]] = {
    "AWS::S3::Bucket": storage.price_buckets,
    "AWS::Logs::LogGroup": storage.price_log_groups,
}


def priced_types() -> frozenset[str]:
    """Resource types the model prices (the free ones are in the price data)."""
    return frozenset(_HANDLERS) | frozenset(_STACK_PRICED)


def _stack_level_charges(ctx: PricingContext) -> None:
    storage.price_adopted_storage(ctx)
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


def _aggregate(ctx: PricingContext) -> list[LineItem]:
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
            note = "; ".join(n for n in (f"{quantity(free)} free (always-free tier)", note) if n)
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
    ctx = PricingContext(
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


def merge_templates(templates: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The resources of several stacks of one app as one template (the direct shape's PDS stack
    and its us-east-1 health-check stack), priced together so free tiers count once."""
    merged: dict[str, Any] = {}
    for template in templates:
        for logical_id, resource in template.get("Resources", {}).items():
            if logical_id in merged:
                raise PricingError(f"logical id {logical_id} is in two stacks of the app")
            merged[logical_id] = resource
    return {"Resources": merged}


def synthesize_app(config: Config) -> dict[str, Any]:
    """Every stack `config` deploys, as one template to price."""
    from pds_aws.infra.synth import synthesize_all

    return merge_templates(synthesize_all(config).values())


def estimate_config(config: Config) -> Estimate:
    """Synthesize the stack(s) of `config` and price them (with `[pipeline]` on: production,
    the pipeline and its runs, cost.pipeline_estimate)."""
    backup_idle = backup_idle_rate(config.cost, read_idle_measurement())
    if config.pipeline.enabled:
        from pds_aws.cost.pipeline_estimate import estimate_with_pipeline

        return estimate_with_pipeline(config, backup_idle)
    return estimate(synthesize_app(config), config, backup_idle=backup_idle)
