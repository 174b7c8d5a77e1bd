"""The direct shape (`[edge] kind = "direct"`): each property of issue 11 on the template.

No load balancer; a Caddy proxy in the task that starts after the backup sidecar is HEALTHY;
a task security group open on 80 and 443 only; a DNS updater that may change only the A
records of the domain and *.domain; an external Route 53 health check with its alarm in
us-east-1. What AWS does with these properties cannot run here: each test cites the AWS
documentation that makes the property sufficient.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App

from pds_aws.config import Config
from pds_aws.direct.caddy import caddy_config
from pds_aws.direct.construct import (
    CERTIFICATE_ALARM_DAYS,
    CERTIFICATE_METRIC,
    PROXY_CONTAINER_NAME,
    TLS_CONTAINER_NAME,
    proxy_site,
)
from pds_aws.direct.health_stack import HEALTH_REGION
from pds_aws.infra.synth import CDK_CONTEXT, add_stack
from pds_aws.names import DATA_DIRECTORY, PDS_CONTAINER, PDS_PORT
from pds_aws.routes import HEALTH_CHECK_PATH
from pds_aws.versions import CADDY_IMAGE

Template = dict[str, Any]


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def only(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def containers(template: Template) -> dict[str, dict[str, Any]]:
    _, service = only(template, "AWS::ECS::Service")
    task = template["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    return {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]}


def policy_statements_of_role(template: Template, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_direct_shape_has_no_load_balancer(
    direct_templates: dict[str, Template], stack_template: Template
) -> None:
    """No Elastic Load Balancing resource in either stack of the direct shape (the ALB shape,
    checked alongside, has its load balancer, listeners and target group)."""
    for template in direct_templates.values():
        elb = [
            r["Type"] for r in template["Resources"].values() if "ElasticLoadBalancing" in r["Type"]
        ]
        assert elb == []
    alb = {
        r["Type"]
        for r in stack_template["Resources"].values()
        if "ElasticLoadBalancing" in r["Type"]
    }
    assert "AWS::ElasticLoadBalancingV2::LoadBalancer" in alb
    _, service = only(next(iter(direct_templates.values())), "AWS::ECS::Service")
    assert "LoadBalancers" not in service["Properties"]
    # Without a load balancer the task itself must get a public address (awsvpc, public subnet).
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED"


def test_proxy_container_starts_after_the_backup_sidecar_is_healthy(
    direct_stack_template: Template, direct_config: Config
) -> None:
    """ECS starts a container with a HEALTHY dependency only once the named container's health
    check passes (ECS API reference, ContainerDependency: "HEALTHY - This condition validates
    that the dependent container passes its Docker health check before permitting other
    containers to start"). The proxy waits for the restore (backup) and the certificate (tls);
    tls itself waits for the restore, which brings the certificate and ACME account back."""
    by_name = containers(direct_stack_template)
    proxy = by_name[PROXY_CONTAINER_NAME]
    assert proxy["Image"] == CADDY_IMAGE
    assert {"ContainerName": "backup", "Condition": "HEALTHY"} in proxy["DependsOn"]
    assert {"ContainerName": TLS_CONTAINER_NAME, "Condition": "HEALTHY"} in proxy["DependsOn"]
    tls = by_name[TLS_CONTAINER_NAME]
    assert tls["DependsOn"] == [{"ContainerName": "backup", "Condition": "HEALTHY"}]
    assert tls["HealthCheck"]["Command"] == ["CMD", "pds-aws-tls", "health"]
    assert {"ContainerName": "backup", "Condition": "HEALTHY"} in by_name[PDS_CONTAINER][
        "DependsOn"
    ]
    # The configuration it runs is the one generated from routes.py.
    env = {e["Name"]: e["Value"] for e in proxy["Environment"]}
    generated = caddy_config(proxy_site(direct_config, DATA_DIRECTORY, PDS_PORT))
    assert json.loads(env["CADDY_CONFIG_JSON"]) == generated
    assert "CADDY_CONFIG_JSON" in proxy["Command"][0]
    # The proxy reads the certificate from the data volume but cannot write to it.
    assert proxy["MountPoints"] == [
        {"ContainerPath": DATA_DIRECTORY, "ReadOnly": True, "SourceVolume": "pds-data"}
    ]


def test_task_security_group_opens_only_80_and_443_to_the_world(
    direct_stack_template: Template,
) -> None:
    """With awsvpc networking the task's interface carries the service's security groups
    (ECS developer guide, "Amazon ECS task networking options for Fargate"): its ingress rules
    are all that is open on the public address. Only 80 and 443, from anywhere, no rule on the
    PDS port or any other, and no separate ingress resource adding one."""
    groups = resources(direct_stack_template, "AWS::EC2::SecurityGroup")
    _, service = only(direct_stack_template, "AWS::ECS::Service")
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    task_groups = [g["Fn::GetAtt"][0] for g in network["SecurityGroups"]]
    assert len(task_groups) == 1
    ingress = groups[task_groups[0]]["Properties"]["SecurityGroupIngress"]
    opened = sorted((r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIp")) for r in ingress)
    assert opened == [("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")]
    assert resources(direct_stack_template, "AWS::EC2::SecurityGroupIngress") == {}


def test_dns_updater_may_change_only_the_two_a_records(
    direct_stack_template: Template, direct_config: Config
) -> None:
    """Route 53 evaluates route53:ChangeResourceRecordSetsNormalizedRecordNames against each
    record of a change batch, lower case, without the trailing dot, and with '*' written as
    '\\052' (Route 53 developer guide, "Using IAM policy conditions for fine-grained access
    control"). With ForAllValues the updater may UPSERT A records of exactly the domain and
    *.domain in the one hosted zone. ec2:DescribeNetworkInterfaces has no resource-level
    permission (Service Authorization Reference, Amazon EC2 actions), hence '*'."""
    domain = direct_config.pds.domain
    functions = {
        k: f
        for k, f in resources(direct_stack_template, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "handler.on_task_state_change"
    }
    assert len(functions) == 1
    (function,) = functions.values()
    assert function["Properties"]["Environment"]["Variables"]["DOMAIN"] == domain
    assert function["Properties"]["Environment"]["Variables"]["TTL"] == str(
        direct_config.edge.dns_ttl_seconds
    )
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = policy_statements_of_role(direct_stack_template, role_id)
    route53 = [s for s in statements if "route53:ChangeResourceRecordSets" in as_list(s["Action"])]
    assert len(route53) == 1
    (change,) = route53
    assert as_list(change["Action"]) == ["route53:ChangeResourceRecordSets"]
    resource = json.dumps(change["Resource"])
    assert f"hostedzone/{direct_config.pds.hosted_zone_id}" in resource
    assert change["Condition"] == {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [domain, f"\\052.{domain}"],
            "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
        }
    }
    others = [s for s in statements if s is not change]
    assert [as_list(s["Action"]) for s in others] == [["ec2:DescribeNetworkInterfaces"]]
    assert others[0]["Resource"] == "*"


def test_dns_updater_runs_on_every_start_of_a_pds_task(
    direct_stack_template: Template,
) -> None:
    """ECS sends a "ECS Task State Change" event to EventBridge on every task state change,
    with the task definition ARN and the ENI attachment in `detail` (ECS developer guide,
    "Amazon ECS task state change events"). The rule picks RUNNING tasks of the PDS task
    definition (not the drill's) and invokes the updater; the service waits for the rule."""
    rules = {
        k: r
        for k, r in resources(direct_stack_template, "AWS::Events::Rule").items()
        if r["Properties"].get("EventPattern", {}).get("detail", {}).get("lastStatus")
        == ["RUNNING"]
    }
    assert len(rules) == 1
    ((rule_id, rule),) = rules.items()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    _, service = only(direct_stack_template, "AWS::ECS::Service")
    task_id = service["Properties"]["TaskDefinition"]["Ref"]
    family = direct_stack_template["Resources"][task_id]["Properties"]["Family"]
    (prefix,) = pattern["detail"]["taskDefinitionArn"]
    assert prefix["prefix"].endswith(f":task-definition/{family}:")
    target = rule["Properties"]["Targets"][0]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    handler = direct_stack_template["Resources"][function_id]["Properties"]["Handler"]
    assert handler == "handler.on_task_state_change"
    assert rule_id in service["DependsOn"]


def test_external_health_check_and_its_alarm_live_in_us_east_1(
    direct_config: Config, direct_health_template: Template
) -> None:
    """Route 53 publishes health-check metrics (AWS/Route53 HealthCheckStatus) only in US East
    (N. Virginia) (Route 53 developer guide, "Monitoring health check status and getting
    notifications"), and an alarm's SNS action must be a topic of the alarm's region: the
    health check, the alarm and its topic form a stack deployed to us-east-1. The check probes
    http://<domain>/xrpc/_health through DNS and the proxy, which passes that one path to the
    PDS on port 80. Route 53 counts an HTTP check healthy on a 2xx or 3xx answer ("How Amazon
    Route 53 determines whether a health check is healthy"): the path must not be redirected,
    or the check would pass without reaching the PDS (tests/unit/test_direct_parts.py)."""
    app = App(context=dict(CDK_CONTEXT))
    stack = add_stack(app, direct_config)
    assert stack.health_stack is not None
    assert stack.health_stack.region == HEALTH_REGION
    assert stack.region == direct_config.aws.region

    check_id, check = only(direct_health_template, "AWS::Route53::HealthCheck")
    config = check["Properties"]["HealthCheckConfig"]
    assert config["Type"] == "HTTP"
    assert config["FullyQualifiedDomainName"] == direct_config.pds.domain
    assert config["Port"] == 80
    assert config["ResourcePath"] == HEALTH_CHECK_PATH

    _, alarm = only(direct_health_template, "AWS::CloudWatch::Alarm")
    props = alarm["Properties"]
    assert props["Namespace"] == "AWS/Route53"
    assert props["MetricName"] == "HealthCheckStatus"
    assert props["Dimensions"] == [
        {"Name": "HealthCheckId", "Value": {"Fn::GetAtt": [check_id, "HealthCheckId"]}}
    ]
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["Threshold"] == 1
    topic_id, _ = only(direct_health_template, "AWS::SNS::Topic")
    assert props["AlarmActions"] == [{"Ref": topic_id}]
    subscribed = sorted(
        s["Properties"]["Endpoint"]
        for s in resources(direct_health_template, "AWS::SNS::Subscription").values()
    )
    assert subscribed == sorted(direct_config.monitoring.alarm_emails)


def test_certificate_renewal_failure_alarms_before_expiry(direct_stack_template: Template) -> None:
    """Let's Encrypt no longer e-mails expiry warnings, so the stack watches the certificate
    itself: pds-aws-tls logs `days_left` every hour, a metric filter turns it into a metric,
    and the alarm fires below 21 days (renewal starts at 30) or when the lines stop coming."""
    filters = [
        f["Properties"]
        for f in resources(direct_stack_template, "AWS::Logs::MetricFilter").values()
        if f["Properties"]["MetricTransformations"][0]["MetricName"] == CERTIFICATE_METRIC
    ]
    assert len(filters) == 1
    assert filters[0]["MetricTransformations"][0]["MetricValue"] == "$.days_left"
    alarms = [
        a["Properties"]
        for a in resources(direct_stack_template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == CERTIFICATE_METRIC
    ]
    assert len(alarms) == 1
    assert alarms[0]["Threshold"] == CERTIFICATE_ALARM_DAYS
    assert alarms[0]["ComparisonOperator"] == "LessThanThreshold"
    assert alarms[0]["TreatMissingData"] == "breaching"
    assert alarms[0]["AlarmActions"]


def test_certificate_keeper_may_write_only_the_acme_challenge_record(
    direct_stack_template: Template, direct_config: Config
) -> None:
    """DNS-01 needs a TXT record _acme-challenge.<domain> (RFC 8555, 8.4); the task role may
    UPSERT and DELETE that TXT record and no other (same Route 53 condition keys as above)."""
    _, service = only(direct_stack_template, "AWS::ECS::Service")
    task = direct_stack_template["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = policy_statements_of_role(direct_stack_template, role_id)
    changes = [s for s in statements if "route53:ChangeResourceRecordSets" in as_list(s["Action"])]
    assert len(changes) == 1
    assert changes[0]["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
            f"_acme-challenge.{direct_config.pds.domain}"
        ],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
    }


def test_direct_defaults_are_spot_arm64_half_a_vcpu(
    direct_stack_template: Template, config_factory: Any
) -> None:
    """Fargate Spot, ARM64, 0.5 vCPU / 1 GiB unless [task] says otherwise; 0.25 vCPU is the
    one-line option `cpu = 256`."""
    _, service = only(direct_stack_template, "AWS::ECS::Service")
    strategy = service["Properties"]["CapacityProviderStrategy"]
    assert [s["CapacityProvider"] for s in strategy] == ["FARGATE_SPOT"]
    task = direct_stack_template["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
    assert task["Properties"]["Cpu"] == "512"
    assert task["Properties"]["Memory"] == "1024"
    assert task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    on_demand = config_factory(edge={"kind": "direct"}, task={"spot": False})
    assert on_demand.task.spot is False
    quarter = config_factory(edge={"kind": "direct"}, task={"cpu": 256})
    assert (quarter.task.cpu, quarter.task.memory, quarter.task.spot) == (256, 1024, True)
    assert config_factory().task.spot is False  # the ALB shape stays on-demand
