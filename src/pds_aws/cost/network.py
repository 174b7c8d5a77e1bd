"""Pricing of the network: the load balancer, VPC endpoints, NAT gateways, addresses, DNS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pds_aws.cost.context import PricingContext
from pds_aws.cost.results import Charge, Kind
from pds_aws.cost.template import display_name, list_count


def price_load_balancer(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    ids = (logical_id,)
    ctx.add(
        Charge(
            f"Application Load Balancer {display_name(logical_id)}",
            "alb_hour",
            ctx.hours,
            Kind.FIXED,
            ids,
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
        zones = list_count(props.get("Subnets")) or list_count(props.get("SubnetMappings"))
        ctx.add(
            Charge(
                f"ALB public IPv4 addresses (one per AZ, {zones} AZs)",
                "public_ipv4_hour",
                zones * ctx.hours,
                Kind.FIXED,
                ids,
            )
        )


def price_vpc_endpoint(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    if props.get("VpcEndpointType", "Gateway") == "Gateway":
        ctx.notes.append(f"{logical_id}: gateway VPC endpoint, free")
        return
    zones = list_count(props.get("SubnetIds"))
    ctx.add(
        Charge(
            "Interface VPC endpoints",
            "interface_endpoint_hour",
            zones * ctx.hours,
            Kind.FIXED,
            (logical_id,),
        )
    )


def price_nat_gateway(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(Charge("NAT gateways", "nat_gateway_hour", ctx.hours, Kind.FIXED, (logical_id,)))


def price_eip(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge("Elastic IP addresses", "public_ipv4_hour", ctx.hours, Kind.FIXED, (logical_id,))
    )


def price_hosted_zone(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge("Route 53 hosted zones", "route53_hosted_zone_month", 1, Kind.FIXED, (logical_id,))
    )


def health_check_features(config: Mapping[str, Any]) -> list[str]:
    """The settings Route 53 bills as optional features, each per month."""
    kind = str(config.get("Type", ""))
    features = []
    if kind.startswith("HTTPS"):
        features.append("HTTPS")
    if kind.endswith("STR_MATCH"):
        features.append("string matching")
    if int(config.get("RequestInterval", 30)) < 30:
        features.append("fast interval")
    if config.get("MeasureLatency"):
        features.append("latency measurement")
    return features


def price_health_check(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    config = res.get("Properties", {}).get("HealthCheckConfig", {})
    kind = str(config.get("Type", "?"))
    ctx.add(
        Charge(
            f"Route 53 health checks ({kind})",
            "route53_health_check_month",
            1,
            Kind.FIXED,
            (logical_id,),
        )
    )
    for feature in health_check_features(config):
        ctx.add(
            Charge(
                f"Route 53 health check optional feature: {feature}",
                "route53_health_check_feature_month",
                1,
                Kind.FIXED,
                (logical_id,),
            )
        )
