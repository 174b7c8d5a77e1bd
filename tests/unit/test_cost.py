"""The cost model: exact totals for a known template, nothing skipped, free tiers, schedules.

These tests use hand-made templates and a hand-made price list, so every expected figure is
worked out here by hand. tests/template/test_cost_stack.py prices the real synthesized stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLE_CONFIG, example_data, make_config
from pds_aws.config import Config, CostSettings
from pds_aws.cost.measured import (
    IdleMeasurement,
    MeasuredRate,
    backup_idle_rate,
    measured_path,
    read_idle_measurement,
)
from pds_aws.cost.model import estimate
from pds_aws.cost.prices import PricingError, load_price_data, load_prices, price_regions
from pds_aws.cost.results import Kind
from pds_aws.cost.table import render_table
from pds_aws.cost.template import runs_per_month

# A hand-made price list: the real file's shape, round numbers.
PRICES: dict[str, Any] = {
    "meta": {"hours_per_month": 730},
    "reference": {"name": "reference", "fixed_monthly": 65.45, "region": "us-east-2"},
    "free_tier": {
        "cloudwatch_alarm_metrics": {"quantity": 10},
        "cloudwatch_dashboards": {"quantity": 3},
        "cloudwatch_custom_metrics": {"quantity": 10},
        "cloudwatch_logs_gb": {"quantity": 5},
        "data_transfer_out_gb": {"quantity": 100},
    },
    "container_insights": {"per_cluster": 14, "per_service": 14, "per_task_family": 10},
    "free_resource_types": {
        "AWS::IAM::Role": "IAM is free",
        "AWS::EC2::Subnet": "free",
        "AWS::ECS::TaskDefinition": "priced where it runs",
    },
    "free_resource_type_prefixes": {"Custom::": "provider priced"},
    "regions": {
        "us-east-2": {
            key: {"usd": usd, "per": "unit", "source": "https://example.com", "date": "2026-11-29"}
            for key, usd in {
                "fargate_arm_vcpu_hour": 0.04,
                "fargate_arm_gb_hour": 0.004,
                "fargate_spot_arm_vcpu_hour": 0.01,
                "fargate_spot_arm_gb_hour": 0.001,
                "fargate_ephemeral_gb_hour": 0.0001,
                "alb_hour": 0.02,
                "alb_lcu_hour": 0.008,
                "public_ipv4_hour": 0.005,
                "kms_key_month": 1.0,
                "kms_asymmetric_request": 0.00002,
                "secret_month": 0.4,
                "route53_hosted_zone_month": 0.5,
                "cloudwatch_alarm_metric_month": 0.1,
                "cloudwatch_dashboard_month": 3.0,
                "cloudwatch_custom_metric_month": 0.3,
                "cloudwatch_logs_ingest_gb": 0.5,
                "cloudwatch_logs_storage_gb_month": 0.03,
                "s3_standard_gb_month": 0.02,
                "s3_write_request": 0.000005,
                "s3_read_request": 0.0000004,
                "data_transfer_out_gb": 0.09,
                "eventbridge_event": 0.000001,
            }.items()
        }
    },
}


def config_with(**cost: Any) -> Config:
    """The example config with [cost] assumptions replaced."""
    return make_config(cost=cost)


def book() -> Any:
    return load_prices("us-east-2", PRICES)


def known_template() -> dict[str, Any]:
    """A service of 0.5 vCPU / 1 GB arm64 on-demand with a public IP, an ALB in 2 AZs, one
    ECC KMS key, 3 secrets, 12 single-metric alarms, one dashboard, a blob and a backup bucket,
    two log groups kept 30 days, and free resources."""
    resources: dict[str, Any] = {
        "Role": {"Type": "AWS::IAM::Role"},
        "SubnetA": {"Type": "AWS::EC2::Subnet"},
        "SubnetB": {"Type": "AWS::EC2::Subnet"},
        "AutoDelete": {"Type": "Custom::S3AutoDeleteObjects"},
        "Task": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Cpu": "512",
                "Memory": "1024",
                "RuntimePlatform": {"CpuArchitecture": "ARM64"},
                "EphemeralStorage": {"SizeInGiB": 30},
                "ContainerDefinitions": [
                    {
                        "Name": "pds",
                        "Environment": [
                            {"Name": "PDS_BLOBSTORE_S3_BUCKET", "Value": {"Ref": "Blobs"}}
                        ],
                    },
                    {
                        "Name": "backup",
                        "Environment": [
                            {
                                "Name": "BACKUP_URL",
                                "Value": {"Fn::Join": ["", ["s3://", {"Ref": "Backups"}, "/pds"]]},
                            }
                        ],
                    },
                ],
            },
        },
        "Service": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": {"Ref": "Task"},
                "DesiredCount": 1,
                "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
                "NetworkConfiguration": {"AwsvpcConfiguration": {"AssignPublicIp": "ENABLED"}},
            },
        },
        "Alb": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Scheme": "internet-facing",
                "Subnets": [{"Ref": "SubnetA"}, {"Ref": "SubnetB"}],
            },
        },
        "RotationKey": {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY"},
        },
        "Dashboard": {"Type": "AWS::CloudWatch::Dashboard"},
        "Blobs": {"Type": "AWS::S3::Bucket"},
        "Backups": {"Type": "AWS::S3::Bucket"},
        "PdsLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
        "BackupLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
    }
    for n in range(3):
        resources[f"Secret{n}"] = {"Type": "AWS::SecretsManager::Secret"}
    for n in range(12):
        resources[f"Alarm{n}"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 60}}
    return {"Resources": resources}


ASSUMPTIONS: dict[str, Any] = {
    "alb_lcu": 1.0,
    "plc_signatures_per_month": 10_000,
    "data_transfer_out_gb_per_month": 150.0,
    "blob_storage_gb": 10.0,
    "blob_write_requests_per_month": 100_000,
    "blob_read_requests_per_month": 1_000_000,
    "backup_storage_gb": 5.0,
    "backup_write_requests_per_month": 200_000,
    "log_ingestion_gb_per_month": 8.0,
    "use_free_tier": True,
}


def test_known_template_prices_to_the_hand_computed_total() -> None:
    est = estimate(
        known_template(),
        config_with(**ASSUMPTIONS),
        prices=book(),
        backup_idle=MeasuredRate(40.0, "measured"),
    )
    hours = 730
    fixed = (
        0.5 * hours * 0.04  # Fargate vCPU: 14.60
        + 1 * hours * 0.004  # Fargate memory: 2.92
        + (30 - 20) * hours * 0.0001  # ephemeral storage above 20 GiB: 0.73
        + hours * 0.005  # the task's public IPv4: 3.65
        + hours * 0.02  # ALB hours: 14.60
        + 2 * hours * 0.005  # ALB public IPv4, two AZs: 7.30
        + 1.0  # KMS key
        + 3 * 0.4  # secrets: 1.20
        + (12 - 10) * 0.1  # alarms beyond the 10 free: 0.20
        + 0  # one dashboard, within the 3 free
        + 40 * hours * 0.000005  # backup sidecar idle requests: 0.146
        + 0.5  # the existing hosted zone of the config
    )
    variable = (
        1.0 * hours * 0.008  # LCU: 5.84
        + 10_000 * 0.00002  # KMS sign requests: 0.20
        + (150 - 100) * 0.09  # data transfer beyond 100 GB free: 4.50
        + 10 * 0.02  # blob storage: 0.20
        + 100_000 * 0.000005  # blob uploads: 0.50
        + 1_000_000 * 0.0000004  # blob reads: 0.40
        + 5 * 0.02  # backup storage: 0.10
        + 200_000 * 0.000005  # backup uploads: 1.00
        + (8 - 5) * 0.5  # log ingestion beyond 5 GB free: 1.50
        + 8 * 30 / (365 / 12) * 0.03  # logs kept 30 days (free GB used up by ingestion)
    )
    assert est.unpriced == ()
    assert est.fixed_monthly == pytest.approx(fixed, abs=1e-9)
    assert est.variable_monthly == pytest.approx(variable, abs=1e-9)
    assert est.total_monthly == pytest.approx(fixed + variable, abs=1e-9)
    assert {t for _, t, _ in est.free} == {
        "AWS::IAM::Role",
        "AWS::EC2::Subnet",
        "Custom::S3AutoDeleteObjects",
        "AWS::ECS::TaskDefinition",
    }


def test_without_free_tier_every_unit_is_billed() -> None:
    with_tier = estimate(known_template(), config_with(**ASSUMPTIONS), prices=book())
    without = estimate(
        known_template(), config_with(**{**ASSUMPTIONS, "use_free_tier": False}), prices=book()
    )
    # 10 alarm metrics, the dashboard, 100 GB transfer and 5 GB of logs become billable.
    extra = 10 * 0.1 + 3.0 + 100 * 0.09 + 5 * 0.5
    assert without.total_monthly - with_tier.total_monthly == pytest.approx(extra, abs=1e-9)


def test_an_unknown_resource_type_is_reported_not_skipped() -> None:
    template = known_template()
    template["Resources"]["Mystery"] = {"Type": "AWS::Mystery::Thing"}
    est = estimate(template, config_with(**ASSUMPTIONS), prices=book())
    assert [(u.logical_id, u.resource_type) for u in est.unpriced] == [
        ("Mystery", "AWS::Mystery::Thing")
    ]
    assert est.to_json()["unpriced"] == [
        {
            "logical_id": "Mystery",
            "type": "AWS::Mystery::Thing",
            "why": "type not in the cost model",
        }
    ]
    assert "UNPRICED" in render_table(est) and "Mystery" in render_table(est)


def test_a_price_missing_from_the_data_names_the_file_and_key() -> None:
    template = {"Resources": {"Nat": {"Type": "AWS::EC2::NatGateway"}}}
    with pytest.raises(PricingError, match=r"prices.toml: no price 'nat_gateway_hour'"):
        estimate(template, config_with(), prices=book())


def test_a_region_without_prices_is_a_clear_error() -> None:
    with pytest.raises(PricingError, match=r"no prices for region 'eu-west-3'.*us-east-2"):
        load_prices("eu-west-3")


def test_spot_strategy_is_priced_at_spot_rates() -> None:
    template = known_template()
    template["Resources"]["Service"]["Properties"]["CapacityProviderStrategy"] = [
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 1}
    ]
    on_demand = estimate(known_template(), config_with(), prices=book())
    spot = estimate(template, config_with(), prices=book())
    saving = 0.5 * 730 * (0.04 - 0.01) + 1 * 730 * (0.004 - 0.001)
    assert on_demand.fixed_monthly - spot.fixed_monthly == pytest.approx(saving, abs=1e-9)


def test_capacity_base_goes_first_then_weights_split_the_rest() -> None:
    template = known_template()
    props = template["Resources"]["Service"]["Properties"]
    props["DesiredCount"] = 3
    props["CapacityProviderStrategy"] = [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 1},
    ]
    est = estimate(template, config_with(), prices=book())
    vcpu_hours = {
        line.price_key: line.quantity for line in est.lines if line.price_key.endswith("vcpu_hour")
    }
    # 1 task by base, the other 2 half and half: 2 on-demand, 1 Spot, 0.5 vCPU each.
    assert vcpu_hours == {
        "fargate_arm_vcpu_hour": pytest.approx(2 * 0.5 * 730),
        "fargate_spot_arm_vcpu_hour": pytest.approx(1 * 0.5 * 730),
    }


def test_scheduled_restore_drill_is_priced_as_fargate_time() -> None:
    template = known_template()
    template["Resources"]["Drill"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "ScheduleExpression": "rate(7 days)",
            "Targets": [
                {
                    "Arn": "cluster",
                    "Id": "drill",
                    "EcsParameters": {
                        "TaskDefinitionArn": {"Ref": "Task"},
                        "LaunchType": "FARGATE",
                        "NetworkConfiguration": {
                            "AwsVpcConfiguration": {"AssignPublicIp": "ENABLED"}
                        },
                    },
                }
            ],
        },
    }
    base = estimate(known_template(), config_with(restore_drill_minutes=30), prices=book())
    with_drill = estimate(template, config_with(restore_drill_minutes=30), prices=book())
    runs = 730 / (7 * 24)
    hours = runs * 0.5
    expected = (
        runs * 0.000001
        + hours * (0.5 * 0.04 + 1 * 0.004 + 10 * 0.0001)  # ephemeral 30 GiB: 10 billed
    )
    assert with_drill.fixed_monthly - base.fixed_monthly == pytest.approx(expected, abs=1e-9)
    assert with_drill.unpriced == ()


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("rate(1 day)", 730 / 24),
        ("rate(30 minutes)", 730 * 2),
        ("cron(0 4 ? * SUN *)", 52 / 12),
        ("cron(0 4 ? * MON,THU *)", 2 * 52 / 12),
        ("cron(0 4 * * ? *)", 365 / 12),
        ("cron(0 */6 * * ? *)", 4 * 365 / 12),
        ("cron(0 4 1 * ? *)", 1),
    ],
)
def test_schedule_expressions_become_runs_per_month(expression: str, runs: float) -> None:
    assert runs_per_month(expression, 730) == pytest.approx(runs)


def test_internal_or_ipv4_less_load_balancers_have_no_public_addresses() -> None:
    template = known_template()
    template["Resources"]["Alb"]["Properties"]["Scheme"] = "internal"
    est = estimate(template, config_with(), prices=book())
    assert not [line for line in est.lines if line.resource.startswith("ALB public IPv4")]


def test_container_insights_is_priced_as_custom_metrics() -> None:
    template = known_template()
    template["Resources"]["Cluster"] = {
        "Type": "AWS::ECS::Cluster",
        "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    }
    base = estimate(known_template(), config_with(), prices=book())
    est = estimate(template, config_with(), prices=book())
    # 14 cluster + 14 service + 10 task family metrics, 10 of them free.
    assert est.fixed_monthly - base.fixed_monthly == pytest.approx((38 - 10) * 0.3)


def test_measured_backup_rate_is_read_from_its_data_file(tmp_path: Path) -> None:
    path = tmp_path / "measured.json"
    section = {"requests_per_hour": 84, "accounts": 200, "databases": 603}
    path.write_text(json.dumps({"backup_idle_requests": section}))
    assert read_idle_measurement(path) == IdleMeasurement(84.0, accounts=200, databases=603)
    path.write_text(json.dumps({"backup_idle_requests": {"requests_per_hour": 12}}))
    assert read_idle_measurement(path) == IdleMeasurement(12.0)
    path.write_text(json.dumps({}))
    assert read_idle_measurement(path) is None
    assert read_idle_measurement(tmp_path / "none.json") is None


def test_the_committed_measurement_names_its_command_and_machine() -> None:
    data = json.loads(measured_path().read_text())["backup_idle_requests"]
    assert read_idle_measurement() == IdleMeasurement(
        float(data["requests_per_hour"]),
        data["accounts"],
        data["databases"],
        float(data.get("per_task_per_hour", 0.0)),
    )
    assert "benchmarks/backup_idle_requests.py" in data["command"]
    assert "cores" in data["machine"]


def test_without_a_measurement_the_assumption_is_used_and_said() -> None:
    settings = config_with(backup_idle_requests_per_hour=7.0).cost
    assumed = backup_idle_rate(settings, None)
    assert assumed.requests_per_hour == 7.0
    assert "assumed" in assumed.source and "backup_idle_requests_per_hour" in assumed.source
    unscoped = backup_idle_rate(settings, IdleMeasurement(12.0))
    assert unscoped.requests_per_hour == 12.0 and "scope not stated" in unscoped.source


def test_a_measured_idle_rate_is_scaled_per_database_to_the_configs_accounts() -> None:
    measured = IdleMeasurement(84.0, accounts=200, databases=603)
    rate = backup_idle_rate(config_with(accounts=20).cost, measured)
    # 20 account databases + account, sequencer and did_cache.
    assert rate.requests_per_hour == pytest.approx(84 * 23 / 603)
    assert "603 databases" in rate.source and "accounts = 20" in rate.source


def test_the_per_task_part_of_a_measured_idle_rate_is_not_scaled() -> None:
    """The lease renewals (one task's) stay as measured; the per-database rest is scaled."""
    measured = IdleMeasurement(78.0, accounts=200, databases=203, per_task_per_hour=42.0)
    rate = backup_idle_rate(config_with(accounts=20).cost, measured)
    assert rate.requests_per_hour == pytest.approx(42 + (78 - 42) * 23 / 203)
    assert "42 of it per task" in rate.source


def test_price_data_has_every_price_for_both_required_regions() -> None:
    data = load_price_data()
    assert {"us-east-1", "us-east-2"} <= set(price_regions(data))
    keys = {region: set(data["regions"][region]) for region in price_regions(data)}
    assert keys["us-east-1"] == keys["us-east-2"]
    for region in price_regions(data):
        for key, line in data["regions"][region].items():
            assert line["usd"] >= 0, key
            assert line["source"].startswith("https://aws.amazon.com/"), key
            assert len(line["date"]) == 10, key


def test_json_has_the_contract_fields() -> None:
    est = estimate(known_template(), config_with(), prices=book())
    out = est.to_json()
    for key in ("fixed_monthly", "variable_monthly", "total_monthly"):
        assert isinstance(out[key], float)
    assert out["unpriced"] == []
    assert out["total_monthly"] == pytest.approx(
        out["fixed_monthly"] + out["variable_monthly"], abs=0.011
    )
    assert {line["kind"] for line in out["lines"]} == {k.value for k in Kind}


def test_example_config_has_the_documented_cost_defaults() -> None:
    # The example's [cost] lists every assumption with the model's default (config/model.py).
    documented = example_data()["cost"]
    defaults = CostSettings().model_dump()
    assert set(documented) == set(defaults)
    assert {key: documented[key] for key in defaults} == defaults


def test_event_rules_on_aws_service_events_are_free_custom_ones_unpriced() -> None:
    template = known_template()
    template["Resources"]["TaskStopped"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {"EventPattern": {"source": ["aws.ecs"]}},
    }
    template["Resources"]["Custom"] = {
        "Type": "AWS::Events::Rule",
        "Properties": {"EventPattern": {"source": ["my.app"]}},
    }
    base = estimate(known_template(), config_with(), prices=book())
    est = estimate(template, config_with(), prices=book())
    assert est.total_monthly == base.total_monthly
    assert ("TaskStopped", "AWS::Events::Rule") in {(i, t) for i, t, _ in est.free}
    assert [u.logical_id for u in est.unpriced] == ["Custom"]


def test_pds_aws_cost_exits_non_zero_when_something_is_unpriced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pds_aws.cost.model
    from pds_aws.cli import main

    template = known_template()
    template["Resources"]["Mystery"] = {"Type": "AWS::Mystery::Thing"}
    monkeypatch.setattr(
        pds_aws.cost.model,
        "estimate_config",
        lambda config: estimate(template, config, prices=book()),
    )
    assert main(["cost", "-c", str(EXAMPLE_CONFIG), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["unpriced"][0]["type"] == "AWS::Mystery::Thing"
