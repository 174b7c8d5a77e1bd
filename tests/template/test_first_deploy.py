"""Issue 9: template defects that no offline run shows, but a first real deploy would.

No emulator enforces these (moto runs no alarms, load balancers or EventBridge deliveries), so
each test asserts the template property that the AWS document or the PDS source named in its
docstring implies, and fails on the template without the fix.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from helpers import make_config
from pds_aws.config import Config
from pds_aws.infra.images import PDS_IMAGE_DIRECTORY
from pds_aws.infra.monitoring import dashboard_name
from pds_aws.infra.service import (
    MIN_CLIENT_UPLOAD_BYTES_PER_SECOND,
    blob_upload_timeout_ms,
    pds_image,
)
from pds_aws.infra.stack import SMTP_GENERATION_LABEL
from pds_aws.names import PDS_CONTAINER

Template = dict[str, Any]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PDS_DIST_INDEX = PROJECT_ROOT / "node_modules" / "@atproto" / "pds" / "dist" / "index.js"


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def only(template: Template, kind: str) -> dict[str, Any]:
    (found,) = resources(template, kind).values()
    return found


def container(template: Template, name: str) -> dict[str, Any]:
    ref = only(template, "AWS::ECS::Service")["Properties"]["TaskDefinition"]["Ref"]
    definitions = template["Resources"][ref]["Properties"]["ContainerDefinitions"]
    return next(c for c in definitions if c["Name"] == name)


def environment(template: Template) -> dict[str, str]:
    return {e["Name"]: e["Value"] for e in container(template, PDS_CONTAINER)["Environment"]}


def _alarm_on(template: Template, namespace: str, metric: str) -> list[dict[str, Any]]:
    """Alarms whose metric, or one metric of whose expression, is namespace/metric."""
    found = []
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        stats = [props] + [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        if any(s.get("Namespace") == namespace and s.get("MetricName") == metric for s in stats):
            found.append(props)
    return found


def _metric_dimensions(alarm: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    for m in alarm.get("Metrics", []):
        stat = m.get("MetricStat", {}).get("Metric", {})
        if stat.get("MetricName") == metric:
            return list(stat["Dimensions"])
    return list(alarm["Dimensions"])


# --- defect 1: the drill-failure rule reaches its alarm ---------------------------------------


def test_no_eventbridge_target_is_a_log_group_arn_ending_in_wildcard(
    stack_template: Template, prod_stack_template: Template
) -> None:
    """EventBridge needs a log group's ARN without the ":*" that Fn::GetAtt LogGroup.Arn
    returns; with it, events are silently not delivered (EventBridge User Guide, "Amazon
    EventBridge targets" / CloudWatch Logs target; aws-cdk aws-events-targets log-group.ts
    builds the ARN with `arnFormat: COLON_RESOURCE_NAME` for this reason). A log-group target
    also needs a CloudWatch Logs resource policy, of which an account has only 10 per region
    (CloudWatch Logs quotas): the stack uses none."""
    for template in (stack_template, prod_stack_template):
        log_groups = set(resources(template, "AWS::Logs::LogGroup"))
        for rule_id, rule in resources(template, "AWS::Events::Rule").items():
            for target in rule["Properties"].get("Targets", []):
                arn = target["Arn"]
                assert not (isinstance(arn, str) and arn.endswith(":*")), rule_id
                if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                    assert arn["Fn::GetAtt"][0] not in log_groups, rule_id
                assert ":log-group:" not in json.dumps(arn), rule_id
        assert not resources(template, "AWS::Logs::ResourcePolicy")


def test_drill_failed_alarm_counts_the_failure_rule_s_own_matches(
    stack_template: Template,
) -> None:
    """The alarm counts AWS/Events TriggeredRules of the drill-failure rule (dimension
    RuleName: "Metrics that specify only the RuleName dimension refer to the default event
    bus", EventBridge User Guide, "Monitoring Amazon EventBridge"), so no delivery to a log
    group stands between a failed drill and the alarm."""
    rules = resources(stack_template, "AWS::Events::Rule")
    (failure_rule_id,) = [k for k, r in rules.items() if "EventPattern" in r["Properties"]]
    pattern = rules[failure_rule_id]["Properties"]["EventPattern"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    (alarm,) = _alarm_on(stack_template, "AWS/Events", "TriggeredRules")
    assert _metric_dimensions(alarm, "TriggeredRules") == [
        {"Name": "RuleName", "Value": {"Ref": failure_rule_id}}
    ]
    assert alarm["Threshold"] == 1
    # The stopped-task event itself goes to the operator's alarm topic as well.
    (topic_id,) = resources(stack_template, "AWS::SNS::Topic")
    targets = rules[failure_rule_id]["Properties"]["Targets"]
    assert [t["Arn"] for t in targets] == [{"Ref": topic_id}]


# --- defect 2: nothing retained in prod carries a fixed name ----------------------------------


def _name_properties(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k == "Name" or k.endswith("Name")}


def test_no_resource_retained_in_prod_has_a_fixed_physical_name(
    prod_stack_template: Template,
) -> None:
    """A resource kept by DeletionPolicy Retain outlives the stack; with a fixed physical
    name the next create (after `make destroy`, or after a failed first create) fails with
    "already exists" (CloudFormation User Guide, "Name type": "If you specify a name, you
    cannot perform updates that require replacement of this resource"; the retained one
    still holds the name). Every Name-like property of a retained resource must be left to
    CloudFormation or computed from other resources, never a literal."""
    retained = {
        k: r
        for k, r in prod_stack_template["Resources"].items()
        if r.get("DeletionPolicy") == "Retain"
    }
    assert retained  # prod keeps buckets, key, secrets, logs
    for logical_id, resource in retained.items():
        for prop, value in _name_properties(resource.get("Properties", {})).items():
            assert not isinstance(value, str), f"{logical_id}.{prop} = {value!r}"


def test_prod_bucket_policies_are_retained_with_their_buckets(
    prod_stack_template: Template, stack_template: Template
) -> None:
    """CloudFormation deletes a bucket policy whose DeletionPolicy is not Retain even when
    the bucket is retained (CloudFormation User Guide, "DeletionPolicy attribute": it applies
    per resource): the backup bucket, which holds every account's signing key, would be left
    without its deny statements after a destroy."""
    buckets = resources(prod_stack_template, "AWS::S3::Bucket")
    policies = resources(prod_stack_template, "AWS::S3::BucketPolicy").values()
    by_bucket = {p["Properties"]["Bucket"]["Ref"]: p for p in policies}
    for bucket_id, bucket in buckets.items():
        if bucket.get("DeletionPolicy") == "Retain":
            assert by_bucket[bucket_id]["DeletionPolicy"] == "Retain", bucket_id
    # Test mode deletes both.
    for policy in resources(stack_template, "AWS::S3::BucketPolicy").values():
        assert policy.get("DeletionPolicy", "Delete") == "Delete"


# --- defect 3: the ALB closes idle connections before the PDS does ----------------------------


def _pds_keep_alive_seconds(index_js: Path = PDS_DIST_INDEX) -> float:
    match = re.search(r"keepAliveTimeout\s*=\s*([\d_]+)", index_js.read_text(encoding="utf-8"))
    assert match, f"{index_js} no longer sets server.keepAliveTimeout"
    return int(match.group(1).replace("_", "")) / 1000


def test_alb_idle_timeout_is_below_the_installed_pds_keep_alive(
    stack_template: Template,
) -> None:
    """ELB User Guide, "Edit attributes for your Application Load Balancer", Connection idle
    timeout: configure the application's idle timeout larger than the load balancer's, or the
    load balancer may send a request on a connection the target has closed and answer 502.
    The PDS sets `server.keepAliveTimeout` in @atproto/pds dist/index.js (read here from the
    installed package)."""
    alb = only(stack_template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    idle = int(attributes["idle_timeout.timeout_seconds"])
    assert idle < _pds_keep_alive_seconds()
    # The relays' websocket pings (every 30 s, indigo events/consumer.go) fit inside it.
    assert idle > 30


def test_load_balancer_s_own_5xx_are_alarmed(stack_template: Template) -> None:
    """A 502 from a reused closed connection is counted in HTTPCode_ELB_5XX_Count, not in
    HTTPCode_Target_5XX_Count (ELB User Guide, "CloudWatch metrics for your Application Load
    Balancer"), so the target-5xx alarm cannot see it."""
    (alarm,) = _alarm_on(stack_template, "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count")
    (dimension,) = alarm["Dimensions"]
    assert dimension["Name"] == "LoadBalancer"
    (topic_id,) = resources(stack_template, "AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


# --- defect 5: the S3 upload timeout fits the upload limit ------------------------------------


def test_upload_timeout_lets_a_blob_of_the_limit_stream_at_the_minimum_bandwidth(
    stack_template: Template,
) -> None:
    """@atproto/pds config.js: `uploadTimeoutMs: env.blobstoreS3UploadTimeoutMs || 20000`,
    read from PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS (config/env.js); @atproto/aws s3.js aborts
    the whole client -> PDS -> S3 upload after it. A blob of the upload limit must arrive at
    MIN_CLIENT_UPLOAD_BYTES_PER_SECOND."""
    env = environment(stack_template)
    limit = int(env["PDS_BLOB_UPLOAD_LIMIT"])
    timeout_ms = int(env["PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS"])
    assert timeout_ms == blob_upload_timeout_ms(limit)
    for upload_limit in (limit, 1_000_000_000):
        timeout_ms = blob_upload_timeout_ms(upload_limit)
        assert timeout_ms / 1000 * MIN_CLIENT_UPLOAD_BYTES_PER_SECOND >= upload_limit
        assert timeout_ms > 20_000


# --- defect 7: the grace period covers the restore, the PDS start and two checks --------------


def test_health_check_grace_period_outlasts_restore_start_and_two_alb_checks(
    stack_template: Template,
) -> None:
    """ECS Developer Guide, service definition `healthCheckGracePeriodSeconds`: the period
    during which ECS ignores unhealthy load-balancer checks of a new task. The PDS container
    starts only when the sidecar is HEALTHY, which may take the sidecar's whole container
    health window (startPeriod + retries x interval, ECS HealthCheck); then the target needs
    HealthyThresholdCount passed checks, one per HealthCheckIntervalSeconds. Values are read
    from the template."""
    service = only(stack_template, "AWS::ECS::Service")["Properties"]
    grace = service["HealthCheckGracePeriodSeconds"]
    check = container(stack_template, "backup")["HealthCheck"]
    restore_window = check["StartPeriod"] + check["Retries"] * check["Interval"]
    target_group = only(stack_template, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    alb_checks = target_group["HealthyThresholdCount"] * target_group["HealthCheckIntervalSeconds"]
    pds_start = container(stack_template, PDS_CONTAINER)["HealthCheck"]["Interval"]
    assert grace >= restore_window + alb_checks + pds_start


# --- defect 9: three smaller ones --------------------------------------------------------------


def test_no_healthy_hosts_alarm_outlasts_a_normal_task_start(stack_template: Template) -> None:
    """With one task and minimum 0 %, a first create, every deploy and every replacement leave
    the target group without a healthy host for up to the grace period (missing data counts
    as breaching here, CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing
    data"). The alarm may only fire once that time is over."""
    grace = only(stack_template, "AWS::ECS::Service")["Properties"]["HealthCheckGracePeriodSeconds"]
    (alarm,) = [
        a
        for a in _alarm_on(stack_template, "AWS/ApplicationELB", "HealthyHostCount")
        if a["ComparisonOperator"] == "LessThanThreshold"
    ]
    datapoints = alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"])
    assert alarm["Period"] * datapoints > grace
    assert alarm["TreatMissingData"] == "breaching"


def test_dashboard_name_differs_per_region(
    stack_template: Template, example_config: Config
) -> None:
    """Dashboard names are unique per account, across regions (CloudWatch API Reference,
    PutDashboard: DashboardName; dashboards are global): one stack name in two regions must
    not collide."""
    name = only(stack_template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardName"]
    config_a = make_config(aws={"region": "us-east-1"})
    config_b = make_config(aws={"region": "eu-west-1"})
    assert dashboard_name(config_a) != dashboard_name(config_b)
    assert config_a.aws.stack_name == config_b.aws.stack_name
    assert name == dashboard_name(example_config)
    assert example_config.aws.region in name


def test_new_smtp_credentials_bring_a_new_task_definition(
    stack_template: Template, example_config: Config
) -> None:
    """ECS injects a Secrets Manager secret into the container when the task starts (ECS
    Developer Guide, "Pass Secrets Manager secrets through Amazon ECS environment variables":
    a running task does not see an updated secret). A new SMTP key must therefore change the
    task definition, so CloudFormation deploys a new task: the credentials generation is a
    docker label of the PDS container, equal to the custom resource's."""
    generation = only(stack_template, "Custom::SesSmtpCredentials")["Properties"]["Generation"]
    labels = container(stack_template, PDS_CONTAINER)["DockerLabels"]
    assert labels[SMTP_GENERATION_LABEL] == generation


# --- defect 6: SES sandbox --------------------------------------------------------------------


def test_smtp_user_sends_from_the_configured_address_to_any_recipient(
    stack_template: Template, example_config: Config
) -> None:
    """SES Developer Guide, "Identity and access management in Amazon SES": the
    `ses:FromAddress` condition restricts the From address; in the sandbox SES also
    authorizes the send against the recipient's verified identity, so a resource of
    `identity/<domain>` alone fails with 554 for a verified recipient address."""
    user = only(stack_template, "AWS::IAM::User")["Properties"]
    [group_ref] = user["Groups"]
    statements = [
        s
        for p in resources(stack_template, "AWS::IAM::Policy").values()
        if group_ref in p["Properties"].get("Groups", [])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (statement,) = statements
    assert statement["Action"] == "ses:SendRawEmail"
    assert json.dumps(statement["Resource"]).endswith(':identity/*"')
    assert statement["Condition"] == {
        "StringEquals": {"ses:FromAddress": example_config.pds.email_from_address}
    }


# --- the PDS image comes from the stack's own ECR ---------------------------------------------


def test_pds_image_is_pulled_from_the_stack_s_own_ecr_repository(
    stack_template: Template, example_config: Config
) -> None:
    """ECS pulls what the container definition's `image` names (ECS Developer Guide, task
    definition parameters, "image"). It must be the stack's ECR repository, filled at deploy
    time by the CodeBuild build whose one-line Dockerfile is `FROM` the pinned official image,
    so a task replacement does not depend on ghcr.io and what runs cannot change under a tag."""
    image = json.dumps(container(stack_template, PDS_CONTAINER)["Image"])
    assert "ghcr.io" not in image
    repositories = resources(stack_template, "AWS::ECR::Repository")
    (repository_id,) = [r for r in repositories if r in image]
    builds = [
        b["Properties"]
        for b in resources(stack_template, "Custom::CDKContainerImageBuild").values()
        if repository_id in json.dumps(b["Properties"]["repositoryUri"])
    ]
    (build,) = builds
    reference = pds_image(example_config)
    assert reference.startswith("ghcr.io/bluesky-social/pds")
    assert f"--build-arg PDS_IMAGE={reference}" in build["buildCommand"]
    assert (PDS_IMAGE_DIRECTORY / "Dockerfile").read_text().strip().endswith("FROM ${PDS_IMAGE}")


def test_every_image_repository_expires_old_images(stack_template: Template) -> None:
    """ECR User Guide, "Lifecycle policies": without one a repository keeps every image a
    deploy pushes, and storage is billed per GB-month."""
    repositories = resources(stack_template, "AWS::ECR::Repository")
    assert len(repositories) == 2  # the PDS copy and the backup sidecar
    for repository_id, repository in repositories.items():
        policy = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
        counts = [r["selection"] for r in policy["rules"]]
        assert {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5} in (
            counts
        ), repository_id
