"""The cost of the direct shape (issue 11): at most $12 fixed a month in us-east-2 with its
defaults, at most $10 with the one-line 0.25 vCPU option, nothing unpriced, the health check and
its us-east-1 alarm included; the 0.25 vCPU option's bill line by line (two secrets: the PDS
secret with its three keys, and the SMTP URL)."""

from __future__ import annotations

from typing import Any

import pytest

from pds_aws.config import Config
from pds_aws.cost import model as cost
from pds_aws.cost.measured import backup_idle_rate, read_idle_measurement
from pds_aws.cost.prices import PricingError
from pds_aws.cost.results import Estimate

# The targets for the fixed monthly cost in us-east-2.
DIRECT_TARGET_USD = 12.0
DIRECT_QUARTER_VCPU_TARGET_USD = 10.0


def priced(config: Config, templates: dict[str, dict[str, Any]]) -> Estimate:
    idle = backup_idle_rate(config.cost, read_idle_measurement())
    return cost.estimate(cost.merge_templates(templates.values()), config, backup_idle=idle)


def monthly(est: Estimate, *keys: str) -> float:
    return sum(line.monthly for line in est.lines if line.price_key in keys)


@pytest.fixture(scope="module")
def direct(direct_config: Config, direct_templates: dict[str, dict[str, Any]]) -> Estimate:
    return priced(direct_config, direct_templates)


@pytest.fixture(scope="module")
def quarter(config_factory: Any) -> Estimate:
    """pds.example.toml with `[edge] kind = "direct"` and `[task] cpu = 256`, nothing else."""
    from pds_aws.infra.synth import synthesize_all

    quarter_config = config_factory(edge={"kind": "direct"}, task={"cpu": 256})
    assert quarter_config.aws.region == "us-east-2"
    return priced(quarter_config, synthesize_all(quarter_config))


def test_direct_defaults_cost_at_most_12_dollars_fixed_with_nothing_unpriced(
    direct: Estimate, direct_config: Config
) -> None:
    assert direct_config.aws.region == "us-east-2"
    assert direct.unpriced == ()
    assert direct.fixed_monthly <= DIRECT_TARGET_USD, "\n".join(
        f"  ${line.monthly:6.2f} {line.resource}" for line in direct.lines if line.monthly
    )
    # No load balancer line; one public address (the task's), not the ALB's two + the task's.
    assert monthly(direct, "alb_hour", "alb_lcu_hour") == 0
    assert monthly(direct, "public_ipv4_hour") == pytest.approx(730 * 0.005)  # 730 h x $0.005
    # The us-east-1 stack is priced too: one basic HTTP health check, no optional feature.
    assert monthly(direct, "route53_health_check_month") == pytest.approx(0.75)
    assert monthly(direct, "route53_health_check_feature_month") == 0
    # Spot arm64, 0.5 vCPU / 1 GB: 365 vCPU-h x $0.00971 + 730 GB-h x $0.00107.
    fargate = sum(
        line.monthly
        for line in direct.lines
        if line.resource.startswith("ECS service")
        and line.price_key in ("fargate_spot_arm_vcpu_hour", "fargate_spot_arm_gb_hour")
    )
    assert fargate == pytest.approx(365 * 0.00971 + 730 * 0.00107)


def test_direct_with_a_quarter_vcpu_costs_at_most_10_dollars_fixed_with_nothing_unpriced(
    quarter: Estimate,
) -> None:
    assert quarter.unpriced == ()
    assert quarter.fixed_monthly <= DIRECT_QUARTER_VCPU_TARGET_USD, "\n".join(
        f"  ${line.monthly:6.2f} {line.resource}" for line in quarter.lines if line.monthly
    )


def test_direct_with_a_quarter_vcpu_bill_line_by_line(quarter: Estimate, direct: Estimate) -> None:
    assert quarter.unpriced == ()
    measured = read_idle_measurement()
    lease_renewals_per_hour = measured.per_task_per_hour if measured else 0.0
    # The difference is the quarter vCPU less on Spot arm64: 0.25 x 730 h x $0.00971.
    assert direct.fixed_monthly - quarter.fixed_monthly == pytest.approx(
        0.25 * 730 * 0.00971, abs=0.01
    )
    expected = (
        0.25 * 730 * 0.00971  # Fargate Spot arm64, 0.25 vCPU
        + 730 * 0.00107  # 1 GB memory, Spot arm64 (the 635 MiB peak rules out 0.5 GB)
        + 730 * 0.005  # the task's public IPv4 address
        + 2 * 0.40  # secrets: the PDS secret (three JSON keys) and the SMTP URL
        + 1.00  # the KMS rotation key
        + 0.75  # the Route 53 health check (HTTP, priced as a non-AWS endpoint)
        + 0.50  # the hosted zone (exists already; counted as the reference does)
        + 1 * 0.10  # ECR image storage ([cost] container_image_gb = 1)
        # the backup sidecar's lease renewals (measured.json), S3 PUTs at $0.005 per 1,000
        + lease_renewals_per_hour * 730 * 0.000005
    )
    # The rest is cents: the weekly drill, scheduled events, the per-database idle backup
    # requests. No alarm metric beyond the ten free ones, no billed ephemeral storage.
    assert quarter.fixed_monthly == pytest.approx(expected, abs=0.05)
    assert monthly(quarter, "cloudwatch_alarm_metric_month") == 0
    assert monthly(quarter, "fargate_ephemeral_gb_hour") == 0
    assert monthly(quarter, "secret_month") == pytest.approx(2 * 0.40)


def test_an_https_health_check_would_add_an_optional_feature(direct_config: Config) -> None:
    """Route 53 bills HTTPS as an optional feature of a health check (prices.toml source)."""
    template = {
        "Resources": {
            "Check": {
                "Type": "AWS::Route53::HealthCheck",
                "Properties": {"HealthCheckConfig": {"Type": "HTTPS", "RequestInterval": 10}},
            }
        }
    }
    est = cost.estimate(template, direct_config)
    assert monthly(est, "route53_health_check_month") == pytest.approx(0.75)
    # HTTPS and the 10 s "fast" interval: two features at $2.00.
    assert monthly(est, "route53_health_check_feature_month") == pytest.approx(4.00)


def test_merging_stacks_refuses_a_logical_id_in_both() -> None:
    one = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    with pytest.raises(PricingError, match="Topic"):
        cost.merge_templates([one, one])
