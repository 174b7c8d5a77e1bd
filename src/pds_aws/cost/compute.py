"""Pricing of compute: the Fargate service and scheduled tasks, the ECS cluster's Container
Insights, deploy-time and scheduled Lambda functions and CodeBuild image builds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pds_aws.config import FARGATE_FREE_EPHEMERAL_GIB  # Fargate bills storage above it
from pds_aws.cost.context import PricingContext
from pds_aws.cost.results import Charge, Kind, Unpriced
from pds_aws.cost.template import display_name, ref_id, runs_per_month

# Assumed run of a deploy-time custom resource function (seconds) and invocations per deploy.
CUSTOM_RESOURCE_SECONDS = 30.0
CUSTOM_RESOURCE_INVOCATIONS_PER_DEPLOY = 2
# A relay watchdog run: listRepos plus one getRepoStatus per account at each relay.
SCHEDULED_FUNCTION_SECONDS = 10.0


@dataclass(frozen=True)
class FargateShape:
    vcpu: float
    memory_gb: float
    arm: bool
    ephemeral_gib: int


def fargate_shape(ctx: PricingContext, task_definition_id: str) -> FargateShape:
    props = ctx.props(task_definition_id)
    arch = str(props.get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")).upper()
    ephemeral = int(props.get("EphemeralStorage", {}).get("SizeInGiB", FARGATE_FREE_EPHEMERAL_GIB))
    return FargateShape(
        vcpu=int(props["Cpu"]) / 1024,
        memory_gb=int(props["Memory"]) / 1024,
        arm=arch == "ARM64",
        ephemeral_gib=ephemeral,
    )


def capacity_split(strategy: list[Mapping[str, Any]], tasks: float) -> dict[str, float]:
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


def fargate_charges(
    ctx: PricingContext,
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


def cluster_default_strategy(ctx: PricingContext, cluster_ref: Any) -> list[Mapping[str, Any]]:
    cluster = ref_id(cluster_ref)
    for _, assoc in ctx.of_type("AWS::ECS::ClusterCapacityProviderAssociations"):
        props = assoc.get("Properties", {})
        if cluster is None or ref_id(props.get("Cluster")) == cluster:
            strategy: list[Mapping[str, Any]] = props.get("DefaultCapacityProviderStrategy", [])
            return strategy
    return []


def public_ip(props: Mapping[str, Any]) -> bool:
    network = props.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
    return str(network.get("AssignPublicIp", "DISABLED")).upper() == "ENABLED"


def price_ecs_service(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    task_definition = ref_id(props.get("TaskDefinition"))
    if task_definition is None or task_definition not in ctx.resources:
        ctx.unpriced.append(
            Unpriced(logical_id, res["Type"], "task definition not in this template")
        )
        return
    tasks = float(props.get("DesiredCount", 1))
    strategy = props.get("CapacityProviderStrategy") or (
        [{"CapacityProvider": props["LaunchType"], "Weight": 1}]
        if props.get("LaunchType")
        else cluster_default_strategy(ctx, props.get("Cluster"))
    )
    if not strategy:
        strategy = [{"CapacityProvider": "FARGATE", "Weight": 1}]
    shape = fargate_shape(ctx, task_definition)
    for provider, count in capacity_split(strategy, tasks).items():
        if provider not in ("FARGATE", "FARGATE_SPOT"):
            ctx.unpriced.append(Unpriced(logical_id, res["Type"], f"capacity provider {provider}"))
            continue
        ctx.add(
            *fargate_charges(
                ctx,
                f"ECS service {display_name(logical_id)}",
                (logical_id, task_definition),
                shape,
                provider,
                count * ctx.hours,
                public_ip=public_ip(props),
            )
        )


def price_events_rule(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
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
        task_definition = ref_id(ecs_params.get("TaskDefinitionArn"))
        if task_definition is None or task_definition not in ctx.resources:
            ctx.unpriced.append(Unpriced(logical_id, res["Type"], "scheduled task not in template"))
            continue
        count = float(ecs_params.get("TaskCount", 1))
        strategy = ecs_params.get("CapacityProviderStrategy") or [
            {"CapacityProvider": ecs_params.get("LaunchType", "FARGATE"), "Weight": 1}
        ]
        hours = runs * count * ctx.usage.restore_drill_minutes / 60
        for provider, share in capacity_split(strategy, 1.0).items():
            ctx.add(
                *fargate_charges(
                    ctx,
                    f"Scheduled task {display_name(logical_id)} ({runs:.1f} runs a month)",
                    (logical_id, task_definition),
                    fargate_shape(ctx, task_definition),
                    provider,
                    hours * share,
                    public_ip=public_ip(ecs_params),
                )
            )


def price_cluster(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
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
        if ref_id(s.get("Properties", {}).get("Cluster")) in (logical_id, None)
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


def scheduled_runs_per_month(ctx: PricingContext, function_id: str) -> float:
    """Runs a month of a function that EventBridge schedules invoke; 0 if none does."""
    runs = 0.0
    for _, rule in ctx.of_type("AWS::Events::Rule"):
        props = rule.get("Properties", {})
        targets = [t.get("Arn") for t in props.get("Targets", [])]
        if props.get("ScheduleExpression") and {"Fn::GetAtt": [function_id, "Arn"]} in targets:
            runs += runs_per_month(str(props["ScheduleExpression"]), ctx.hours)
    return runs


def price_lambda(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    arm = "arm64" in props.get("Architectures", [])
    memory_gb = float(props.get("MemorySize", 128)) / 1024
    ids = (logical_id,)
    scheduled = scheduled_runs_per_month(ctx, logical_id)
    if scheduled:
        # A scheduled check (the relay watchdog): a few HTTP calls a run.
        ctx.add(
            Charge(
                "Lambda requests (scheduled functions)",
                "lambda_request",
                scheduled,
                Kind.FIXED,
                ids,
                "lambda_requests",
            ),
            Charge(
                f"Lambda compute, {'arm64' if arm else 'x86_64'} (scheduled functions)",
                "lambda_arm_gb_second" if arm else "lambda_x86_gb_second",
                scheduled * SCHEDULED_FUNCTION_SECONDS * memory_gb,
                Kind.FIXED,
                ids,
                "lambda_gb_seconds",
            ),
        )
        return
    invocations = ctx.usage.deploys_per_month * CUSTOM_RESOURCE_INVOCATIONS_PER_DEPLOY
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


def price_codebuild(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    from pds_aws.cost.pipeline import is_pipeline_project

    if is_pipeline_project(res):
        return  # a pipeline step: priced per run with its pipeline (cost.pipeline)
    env = res.get("Properties", {}).get("Environment", {})
    size = str(env.get("ComputeType", "")).removeprefix("BUILD_GENERAL1_").lower()
    arm = str(env.get("Type", "")).startswith("ARM")
    key = f"codebuild_arm1_{size}_minute" if arm else f"codebuild_general1_{size}_minute"
    if key not in ctx.prices.prices:
        ctx.unpriced.append(Unpriced(logical_id, res["Type"], f"compute type {env}"))
        return
    # One build per image the project makes (deploy-time-build shares one project per
    # platform): the backup sidecar and the copy of the PDS image.
    images = sum(
        1
        for _, build in ctx.of_type("Custom::CDKContainerImageBuild")
        if logical_id in str(build.get("Properties", {}).get("codeBuildProjectName"))
    )
    images = max(images, 1)
    ctx.add(
        Charge(
            f"CodeBuild image builds ({images} images, {ctx.usage.deploys_per_month:g} deploys)",
            key,
            ctx.usage.deploys_per_month * ctx.usage.image_build_minutes * images,
            Kind.VARIABLE,
            (logical_id,),
            "codebuild_small_minutes" if size == "small" else None,
        )
    )
