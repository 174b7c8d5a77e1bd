"""Pricing of monitoring and notifications: alarms, dashboards, log metric filters, SNS
e-mails, and the PDS's own e-mail through SES."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pds_aws.cost.context import PricingContext
from pds_aws.cost.results import Charge, Kind
from pds_aws.cost.template import ref_id


def price_alarm(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
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


def price_composite_alarm(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "CloudWatch composite alarms",
            "cloudwatch_composite_alarm_month",
            1,
            Kind.FIXED,
            (logical_id,),
        )
    )


def price_dashboard(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
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


def price_metric_filter(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
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


def price_topic(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    inline = [
        s for s in res.get("Properties", {}).get("Subscription", []) if s.get("Protocol") == "email"
    ]
    separate = [
        i
        for i, s in ctx.of_type("AWS::SNS::Subscription")
        if s.get("Properties", {}).get("Protocol") == "email"
        and ref_id(s.get("Properties", {}).get("TopicArn")) == logical_id
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


def price_email_identity(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "SES e-mails (account confirmation, password reset)",
            "ses_email",
            ctx.usage.emails_per_month,
            Kind.VARIABLE,
            (logical_id,),
        )
    )
