"""The synthesized PDS stack has every resource and property of the architecture.

Each test names one property of guides/ARCHITECTURE.md / issue 2 and fails if the stack loses it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from helpers import (
    PROJECT_ROOT,
    actions,
    container,
    environment,
    log_group,
    only,
    ref_type,
    resources,
    role_statements,
    service_task_definition,
    task_role,
)
from pds_aws.config import Config
from pds_aws.names import DATA_DIRECTORY, PDS_CONTAINER, PDS_PORT
from pds_aws.routes import HEALTH_CHECK_PATH, ROBOTS_PATH, ROBOTS_TXT, alb_rule_groups
from pds_aws.versions import PDS_IMAGE_REPOSITORY

# --- network ---------------------------------------------------------------------------


def test_vpc_has_two_public_subnets_no_nat_and_an_s3_gateway_endpoint(
    stack_template: dict[str, Any],
) -> None:
    assert len(resources(stack_template, "AWS::EC2::VPC")) == 1
    subnets = resources(stack_template, "AWS::EC2::Subnet").values()
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is True for s in subnets)
    assert not resources(stack_template, "AWS::EC2::NatGateway")
    endpoint = only(stack_template, "AWS::EC2::VPCEndpoint")["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert "s3" in json.dumps(endpoint["ServiceName"])


def test_zones_are_resolved_by_cloudformation_not_looked_up(
    stack_template: dict[str, Any],
) -> None:
    # An explicit account/region makes CDK look zones up (credentials) unless the stack
    # supplies them: the zones must be Fn::GetAZs picks.
    zones = [
        s["Properties"]["AvailabilityZone"]
        for s in resources(stack_template, "AWS::EC2::Subnet").values()
    ]
    assert zones == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in range(2)]
    only(stack_template, "AWS::ECS::Cluster")


# --- storage ---------------------------------------------------------------------------


def test_buckets_block_public_access_encrypt_and_enforce_tls(
    stack_template: dict[str, Any],
) -> None:
    buckets = resources(stack_template, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policies = resources(stack_template, "AWS::S3::BucketPolicy").values()
    tls_denied = {
        p["Properties"]["Bucket"]["Ref"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert tls_denied == set(buckets)


def _backup_bucket(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for k, r in resources(template, "AWS::S3::Bucket").items() if "BackupBucket" in k)


def test_backup_bucket_is_versioned_with_a_lifecycle_for_old_versions(
    stack_template: dict[str, Any],
) -> None:
    props = _backup_bucket(stack_template)["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0) > 0 for r in rules)


def test_rotation_key_is_secp256k1_for_signing(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key", {"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "SIGN_VERIFY"}
    )


def _task_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(template, task_role(service_task_definition(template)))


def test_task_role_may_only_sign_and_read_the_public_key(stack_template: dict[str, Any]) -> None:
    key = next(iter(resources(stack_template, "AWS::KMS::Key")))
    kms_actions = set()
    for statement in _task_role_statements(stack_template):
        kms = {a for a in actions(statement) if a.startswith("kms:")}
        kms_actions |= kms
        if kms:
            assert statement["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    assert kms_actions == {"kms:Sign", "kms:GetPublicKey"}


def test_task_role_reaches_blob_objects_only_in_its_bucket(stack_template: dict[str, Any]) -> None:
    buckets = resources(stack_template, "AWS::S3::Bucket")
    blob = next(k for k in buckets if "BlobBucket" in k)
    put = [s for s in _task_role_statements(stack_template) if "s3:PutObject" in s["Action"]]
    # The PDS writes blobs; the backup sidecar writes under its prefix of the backup bucket.
    assert any(blob in json.dumps(s["Resource"]) for s in put)
    for statement in put:
        assert statement["Resource"] != "*"
        assert any(bucket in json.dumps(statement["Resource"]) for bucket in buckets)


# --- modes -----------------------------------------------------------------------------

_DATA_TYPES = (
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
)


def test_prod_retains_buckets_key_secrets_and_logs(prod_stack_template: dict[str, Any]) -> None:
    for kind in _DATA_TYPES:
        found = resources(prod_stack_template, kind)
        assert found, kind
        for name, resource in found.items():
            assert resource.get("DeletionPolicy") == "Retain", name
            assert resource.get("UpdateReplacePolicy") == "Retain", name
    assert not resources(prod_stack_template, "Custom::S3AutoDeleteObjects")


def test_test_mode_destroys_data_and_empties_buckets(stack_template: dict[str, Any]) -> None:
    for kind in _DATA_TYPES:
        for name, resource in resources(stack_template, kind).items():
            assert resource.get("DeletionPolicy") == "Delete", name
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in resources(stack_template, "Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == set(resources(stack_template, "AWS::S3::Bucket"))


def _endpoint_denies(template: dict[str, Any]) -> set[str]:
    return {
        p["Properties"]["Bucket"]["Ref"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and "aws:SourceVpce" in json.dumps(s.get("Condition", {}))
    }


def test_prod_buckets_refuse_object_access_outside_the_vpc_endpoint(
    prod_stack_template: dict[str, Any], stack_template: dict[str, Any]
) -> None:
    assert _endpoint_denies(prod_stack_template) == set(
        resources(prod_stack_template, "AWS::S3::Bucket")
    )
    assert _endpoint_denies(stack_template) == set()  # test mode: reachable for debugging


# --- the task --------------------------------------------------------------------------


def test_pds_container_runs_the_pinned_official_image(
    stack_template: dict[str, Any], example_config: Config
) -> None:
    # Copied at deploy time into the stack's ECR (tests/template/test_first_deploy.py).
    builds = resources(stack_template, "Custom::CDKContainerImageBuild").values()
    reference = f"{PDS_IMAGE_REPOSITORY}:{example_config.pds.image_tag}"
    assert any(
        f"--build-arg PDS_IMAGE={reference}" in b["Properties"]["buildCommand"] for b in builds
    )


def test_pds_environment_is_complete(
    stack_template: dict[str, Any], example_config: Config
) -> None:
    env = environment(stack_template, PDS_CONTAINER)
    pds = example_config.pds
    assert env["PDS_HOSTNAME"] == pds.domain
    assert env["PDS_PORT"] == str(PDS_PORT)
    assert env["PDS_DATA_DIRECTORY"] == DATA_DIRECTORY == "/pds"
    assert env["PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT"] == "true"
    assert ref_type(stack_template, env["PDS_BLOBSTORE_S3_BUCKET"]) == "AWS::S3::Bucket"
    assert env["PDS_BLOBSTORE_S3_REGION"] == example_config.aws.region
    assert ref_type(stack_template, env["PDS_PLC_ROTATION_KEY_KMS_KEY_ID"]) == "AWS::KMS::Key"
    assert env["PDS_DID_PLC_URL"] == pds.plc_url
    assert env["PDS_BSKY_APP_VIEW_URL"] == pds.app_view_url
    assert env["PDS_BSKY_APP_VIEW_DID"] == pds.app_view_did
    assert env["PDS_REPORT_SERVICE_URL"] == pds.report_service_url
    assert env["PDS_REPORT_SERVICE_DID"] == pds.report_service_did
    assert env["PDS_CRAWLERS"] == ",".join(pds.crawlers)
    assert env["PDS_SERVICE_HANDLE_DOMAINS"] == f".{pds.domain}"
    assert env["PDS_BLOB_UPLOAD_LIMIT"] == str(pds.blob_upload_limit_bytes)
    assert env["PDS_INVITE_REQUIRED"] == "true"
    assert env["PDS_EMAIL_FROM_ADDRESS"] == f"noreply@{pds.domain}"
    assert env["LOG_ENABLED"] == "true"
    assert env["LOG_LEVEL"] == pds.log_level
    assert "PDS_BLOBSTORE_DISK_LOCATION" not in env  # both at once is a PDS start error


def test_config_settings_reach_the_environment(
    prod_stack_template: dict[str, Any], prod_config: Config
) -> None:
    env = environment(prod_stack_template, PDS_CONTAINER)
    assert env["PDS_INVITE_REQUIRED"] == "false"
    assert env["PDS_CONTACT_EMAIL_ADDRESS"] == prod_config.pds.contact_email


def test_pds_secrets_are_ecs_secrets_from_secrets_manager(stack_template: dict[str, Any]) -> None:
    pds = container(stack_template, PDS_CONTAINER)
    secrets = {s["Name"]: s["ValueFrom"] for s in pds["Secrets"]}
    assert set(secrets) == {
        "PDS_ADMIN_PASSWORD",
        "PDS_JWT_SECRET",
        "PDS_EMAIL_SMTP_URL",
        "PDS_RATE_LIMIT_BYPASS_KEY",
    }
    for value in secrets.values():
        # A whole secret (Ref) or one JSON key of it (Ref + ":KEY::"; test_pds_secret.py).
        ref = value["Fn::Join"][1][0] if "Fn::Join" in value else value
        assert ref_type(stack_template, ref) == "AWS::SecretsManager::Secret"
    assert not set(secrets) & set(environment(stack_template, PDS_CONTAINER))


def test_no_secret_value_or_access_key_in_the_template(stack_template: dict[str, Any]) -> None:
    text = json.dumps(stack_template)
    assert "SecretAccessKey" not in text
    assert not resources(stack_template, "AWS::IAM::AccessKey")
    for secret in resources(stack_template, "AWS::SecretsManager::Secret").values():
        assert "SecretString" not in secret["Properties"]


def test_data_volume_is_shared_at_pds_and_pds_waits_for_a_healthy_backup(
    stack_template: dict[str, Any],
) -> None:
    task = service_task_definition(stack_template)["Properties"]
    volumes = {v["Name"] for v in task["Volumes"]}
    for name in (PDS_CONTAINER, "backup"):
        mounts = container(stack_template, name)["MountPoints"]
        assert [(m["SourceVolume"] in volumes, m["ContainerPath"]) for m in mounts] == [
            (True, "/pds")
        ], name
    assert container(stack_template, PDS_CONTAINER)["DependsOn"] == [
        {"ContainerName": "backup", "Condition": "HEALTHY"}
    ]


def test_task_size_and_architecture_follow_the_config(
    stack_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    example_config: Config,
    prod_config: Config,
) -> None:
    assert example_config.task != prod_config.task  # conftest: every size differs
    for template, config in ((stack_template, example_config), (prod_stack_template, prod_config)):
        task = service_task_definition(template)["Properties"]
        assert task["RuntimePlatform"]["CpuArchitecture"] == config.task.architecture.value.upper()
        assert (task["Cpu"], task["Memory"]) == (str(config.task.cpu), str(config.task.memory))
        # Fargate's free 20 GiB: the task definition names no size (one more GiB would be billed).
        size = config.task.ephemeral_storage_setting
        if size is None:
            assert "EphemeralStorage" not in task
        else:
            assert task["EphemeralStorage"] == {"SizeInGiB": size}
    assert example_config.task.ephemeral_storage_setting is None
    assert prod_config.task.ephemeral_storage_setting is not None


def test_pds_container_health_check_probes_the_health_path(stack_template: dict[str, Any]) -> None:
    command = container(stack_template, PDS_CONTAINER)["HealthCheck"]["Command"]
    assert command[0] == "CMD-SHELL" and HEALTH_CHECK_PATH in command[1]


# --- the service -----------------------------------------------------------------------


def test_service_runs_exactly_one_task_with_rollback_and_exec(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DesiredCount": 1,
            "DeploymentConfiguration": Match.object_like(
                {
                    "MinimumHealthyPercent": 0,
                    "MaximumPercent": 100,
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                }
            ),
            "EnableExecuteCommand": True,
            "HealthCheckGracePeriodSeconds": Match.any_value(),
        },
    )


def test_spot_setting_selects_the_capacity_provider(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any]
) -> None:
    def providers(template: dict[str, Any]) -> list[str]:
        strategy = only(template, "AWS::ECS::Service")["Properties"]["CapacityProviderStrategy"]
        return [s["CapacityProvider"] for s in strategy]

    assert providers(stack_template) == ["FARGATE"]
    assert providers(prod_stack_template) == ["FARGATE_SPOT"]


def test_service_starts_after_the_smtp_url_is_written(stack_template: dict[str, Any]) -> None:
    service = only(stack_template, "AWS::ECS::Service")
    credentials = next(iter(resources(stack_template, "Custom::SesSmtpCredentials")))
    assert credentials in service["DependsOn"]


# --- the edge --------------------------------------------------------------------------


def test_alb_is_internet_facing_in_two_zones_and_drops_invalid_headers(
    stack_template: dict[str, Any],
) -> None:
    alb = only(stack_template, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    assert alb["Scheme"] == "internet-facing"
    assert len(alb["Subnets"]) == 2
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"


def test_certificate_covers_domain_and_wildcard_by_dns(
    template: Template, example_config: Config
) -> None:
    domain = example_config.pds.domain
    template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": domain,
            "SubjectAlternativeNames": [f"*.{domain}"],
            "ValidationMethod": "DNS",
            "DomainValidationOptions": Match.array_with(
                [{"DomainName": domain, "HostedZoneId": example_config.pds.hosted_zone_id}]
            ),
        },
    )


def _listener(template: dict[str, Any], port: int) -> dict[str, Any]:
    return next(
        r["Properties"]
        for r in resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"]["Port"] == port
    )


def test_https_listener_uses_the_recommended_policy_and_denies_by_default(
    stack_template: dict[str, Any],
) -> None:
    https = _listener(stack_template, 443)
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    [default] = https["DefaultActions"]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "403"


def test_http_redirects_permanently_to_https(stack_template: dict[str, Any]) -> None:
    [action] = _listener(stack_template, 80)["DefaultActions"]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"] == {
        "Port": "443",
        "Protocol": "HTTPS",
        "StatusCode": "HTTP_301",
    }


def _rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [
        r["Properties"]
        for r in resources(template, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    ]
    return sorted(rules, key=lambda r: r["Priority"])


def test_robots_txt_is_answered_by_the_load_balancer(stack_template: dict[str, Any]) -> None:
    robots = _rules(stack_template)[0]
    assert robots["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": [ROBOTS_PATH]}}
    ]
    [action] = robots["Actions"]
    assert action["FixedResponseConfig"]["MessageBody"] == ROBOTS_TXT


def test_only_the_route_table_paths_are_forwarded(stack_template: dict[str, Any]) -> None:
    forwarded = [
        tuple(r["Conditions"][0]["PathPatternConfig"]["Values"])
        for r in _rules(stack_template)
        if r["Actions"][0]["Type"] == "forward"
    ]
    assert forwarded == alb_rule_groups()


def test_target_group_checks_pds_health(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": HEALTH_CHECK_PATH, "Port": PDS_PORT, "TargetType": "ip"},
    )


def test_dns_aliases_for_domain_and_wildcard(
    stack_template: dict[str, Any], example_config: Config
) -> None:
    domain = example_config.pds.domain
    aliases = {
        r["Properties"]["Name"]
        for r in resources(stack_template, "AWS::Route53::RecordSet").values()
        if "AliasTarget" in r["Properties"] and r["Properties"]["Type"] == "A"
    }
    assert aliases == {f"{domain}.", f"*.{domain}."}


def test_task_accepts_traffic_only_from_the_load_balancer(stack_template: dict[str, Any]) -> None:
    [ingress] = resources(stack_template, "AWS::EC2::SecurityGroupIngress").values()
    props = ingress["Properties"]
    assert props["FromPort"] == props["ToPort"] == PDS_PORT
    assert "SourceSecurityGroupId" in props and "CidrIp" not in props


# --- e-mail ----------------------------------------------------------------------------


def test_ses_identity_has_dkim_and_mail_from_records(
    stack_template: dict[str, Any], example_config: Config
) -> None:
    domain = example_config.pds.domain
    identity = only(stack_template, "AWS::SES::EmailIdentity")["Properties"]
    assert identity["EmailIdentity"] == domain
    assert identity["MailFromAttributes"]["MailFromDomain"] == f"mail.{domain}"
    records = [
        r["Properties"] for r in resources(stack_template, "AWS::Route53::RecordSet").values()
    ]
    dkim = [r for r in records if r["Type"] == "CNAME"]
    assert len(dkim) == 3
    assert all("DkimDNSTokenName" in json.dumps(r["Name"]) for r in dkim)
    mail_from = {r["Type"] for r in records if r["Name"] == f"mail.{domain}."}
    assert mail_from == {"MX", "TXT"}


def test_smtp_user_may_only_send_raw_email_from_the_identity(
    stack_template: dict[str, Any],
) -> None:
    user = only(stack_template, "AWS::IAM::User")["Properties"]
    assert "Policies" not in user and "ManagedPolicyArns" not in user
    [group_ref] = user["Groups"]
    statements = [
        s
        for p in resources(stack_template, "AWS::IAM::Policy").values()
        if group_ref in p["Properties"].get("Groups", [])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [s["Action"] for s in statements] == ["ses:SendRawEmail"]
    assert "identity/" in json.dumps(statements[0]["Resource"])


def test_smtp_credentials_resource_writes_the_task_secret(stack_template: dict[str, Any]) -> None:
    props = only(stack_template, "Custom::SesSmtpCredentials")["Properties"]
    smtp_secret = next(
        s["ValueFrom"]
        for s in container(stack_template, PDS_CONTAINER)["Secrets"]
        if s["Name"] == "PDS_EMAIL_SMTP_URL"
    )
    assert props["SecretId"] == smtp_secret
    assert ref_type(stack_template, props["UserName"]) == "AWS::IAM::User"


# --- monitoring ------------------------------------------------------------------------


def test_pds_log_group_has_the_configured_retention(
    stack_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    example_config: Config,
    prod_config: Config,
) -> None:
    def pds_retention(template: dict[str, Any]) -> int:
        group = log_group(template, PDS_CONTAINER)
        return int(template["Resources"][group["Ref"]]["Properties"]["RetentionInDays"])

    retention = example_config.monitoring.log_retention_days
    assert retention != prod_config.monitoring.log_retention_days
    assert pds_retention(stack_template) == retention
    assert pds_retention(prod_stack_template) == prod_config.monitoring.log_retention_days


def test_error_metric_filters_watch_the_pds_and_backup_logs(stack_template: dict[str, Any]) -> None:
    watched = {
        f["Properties"]["LogGroupName"]["Ref"]: f["Properties"]["FilterPattern"]
        for f in resources(stack_template, "AWS::Logs::MetricFilter").values()
    }
    for name in (PDS_CONTAINER, "backup"):
        assert log_group(stack_template, name)["Ref"] in watched, name
    assert watched[log_group(stack_template, PDS_CONTAINER)["Ref"]] == "{ $.level >= 50 }"


def _alarms_by_text(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"].get("MetricName", "") + "|" + r["Properties"]["AlarmDescription"]: r[
            "Properties"
        ]
        for r in resources(template, "AWS::CloudWatch::Alarm").values()
    }


def test_every_alarm_notifies_the_stack_topic(stack_template: dict[str, Any]) -> None:
    topic = next(iter(resources(stack_template, "AWS::SNS::Topic")))
    alarms = _alarms_by_text(stack_template)
    metrics = sorted(key.split("|")[0] for key in alarms)
    assert metrics == sorted(
        [
            "UnHealthyHostCount",
            "HealthyHostCount",
            "HealthyHostCount",
            "HTTPCode_Target_5XX_Count",
            "HTTPCode_ELB_5XX_Count",
            "PdsLogErrors",
            "BackupErrors",
            "",  # the restore drill's math expression
            "Errors",  # the relay watchdog's failed runs
            "RelayWarnings",
        ]
    )
    for key, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], key


def test_healthy_host_alarms_catch_none_and_more_than_one(stack_template: dict[str, Any]) -> None:
    healthy = [
        a for k, a in _alarms_by_text(stack_template).items() if k.startswith("HealthyHostCount|")
    ]
    shapes = {(a["ComparisonOperator"], a["Threshold"]) for a in healthy}
    assert shapes == {("LessThanThreshold", 1), ("GreaterThanThreshold", 1)}


def test_alarm_emails_subscribe_to_the_topic(
    stack_template: dict[str, Any],
    prod_stack_template: dict[str, Any],
    example_config: Config,
    prod_config: Config,
) -> None:
    def emails(template: dict[str, Any]) -> set[str]:
        subscriptions = resources(template, "AWS::SNS::Subscription").values()
        return {
            s["Properties"]["Endpoint"]
            for s in subscriptions
            if s["Properties"]["Protocol"] == "email"
        }

    assert emails(stack_template) == set(example_config.monitoring.alarm_emails)
    assert emails(prod_stack_template) == set(prod_config.monitoring.alarm_emails)
    assert emails(stack_template) != emails(prod_stack_template)


def test_dashboard_shows_requests_latency_5xx_task_and_errors(
    stack_template: dict[str, Any],
) -> None:
    body = json.dumps(
        only(stack_template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    )
    for metric in (
        "RequestCount",
        "TargetResponseTime",
        "HTTPCode_Target_5XX_Count",
        "CPUUtilization",
        "MemoryUtilization",
        "PdsLogErrors",
        "BackupErrors",
    ):
        assert metric in body, metric


# --- tags and outputs ------------------------------------------------------------------

_TAGGED_TYPES = {
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::ECS::Cluster",
    "AWS::ECS::Service",
    "AWS::ECS::TaskDefinition",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::CertificateManager::Certificate",
    "AWS::SNS::Topic",
    "AWS::CloudWatch::Alarm",
    "AWS::IAM::Role",
    "AWS::IAM::User",
    "AWS::Lambda::Function",
    "AWS::SES::EmailIdentity",
}


def test_every_taggable_resource_carries_the_project_tags(stack_template: dict[str, Any]) -> None:
    untagged = []
    for name, resource in stack_template["Resources"].items():
        if resource["Type"] not in _TAGGED_TYPES:
            continue
        tags = resource["Properties"].get("Tags", [])
        pairs = {(t["Key"], t["Value"]) for t in tags} if isinstance(tags, list) else set()
        if ("project", "pds-aws") not in pairs or ("pds-mode", "test") not in pairs:
            untagged.append(name)
    assert not untagged


def test_outputs_name_the_url_secret_buckets_cluster_and_service(
    stack_template: dict[str, Any], example_config: Config
) -> None:
    outputs = stack_template["Outputs"]
    assert outputs["Url"]["Value"] == f"https://{example_config.pds.domain}"
    assert (
        ref_type(stack_template, outputs["AdminPasswordSecretArn"]["Value"])
        == "AWS::SecretsManager::Secret"
    )
    assert ref_type(stack_template, outputs["BlobBucketName"]["Value"]) == "AWS::S3::Bucket"
    assert ref_type(stack_template, outputs["BackupBucketName"]["Value"]) == "AWS::S3::Bucket"
    assert ref_type(stack_template, outputs["ClusterName"]["Value"]) == "AWS::ECS::Cluster"
    assert outputs["ServiceName"]["Value"]["Fn::GetAtt"][1] == "Name"


# --- the environment names are the PDS's own ------------------------------------------

NODE_MODULES = PROJECT_ROOT / "node_modules"


def test_every_pds_variable_set_is_read_by_the_pds_package(stack_template: dict[str, Any]) -> None:
    # The installed @atproto/pds (package-lock.json) is the reference: a misspelt name would
    # be ignored silently by the PDS.
    env_js = (NODE_MODULES / "@atproto" / "pds" / "dist" / "config" / "env.js").read_text(
        encoding="utf-8"
    )
    logger_js = (NODE_MODULES / "@atproto" / "common" / "dist" / "logger.js").read_text(
        encoding="utf-8"
    )
    names = set(environment(stack_template, PDS_CONTAINER)) | {
        s["Name"] for s in container(stack_template, PDS_CONTAINER)["Secrets"]
    }
    unknown = [
        name
        for name in sorted(names)
        if name.startswith("PDS_") and f"'{name}'" not in env_js and f'"{name}"' not in env_js
    ]
    assert not unknown
    assert all(f"process.env.{name}" in logger_js for name in ("LOG_ENABLED", "LOG_LEVEL"))
