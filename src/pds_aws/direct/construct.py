"""The direct edge on AWS: the TLS proxy and certificate keeper in the task, DNS that follows it.

- Container `proxy`: the official Caddy image (versions.CADDY_IMAGE), its JSON configuration
  generated from routes.py (direct/caddy.py), given as an environment value and written to
  a file by the image's shell at start. It loads the wildcard certificate from the data volume,
  mounted read-only.
- Container `tls`: `pds-aws-tls run` from the backup image (direct/tls.py), which obtains and
  renews the certificate with certbot (DNS-01 on Route 53) and reloads Caddy.
- The task's security group: ports 80 and 443 from anywhere, nothing else.
- The DNS updater: an EventBridge rule on the service's "ECS Task State Change" events
  (RUNNING) and a small function that UPSERTs the A records of the domain and *.domain to the
  new task's public address (dns_updater/handler.py). It runs outside the task so the task
  role needs no right over those records, and a task that never gets healthy still gets its
  address published for the operator to reach it.
- `.metrics`: proxy access-log metrics (requests, 5xx), the certificate's days left and the
  DNS updater's errors, which the stack's monitoring watches in place of the load balancer's
  ("certificate expiring" and "DNS update failed" alarms).

The stack wires the start order (backup HEALTHY -> tls HEALTHY -> proxy), makes the service
wait for the DNS updater's rule, and hands `.metrics` to monitoring.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from pds_aws.config import Config
from pds_aws.direct.caddy import (
    CADDY_CONFIG_ENV,
    CADDY_CONFIG_FILE,
    CertificateFiles,
    ProxySite,
    caddy_config,
)
from pds_aws.direct.caddy import (
    PROXY_CONTAINER_NAME as PROXY_CONTAINER_NAME,
)
from pds_aws.direct.caddy import (
    TLS_CONTAINER_NAME as TLS_CONTAINER_NAME,
)
from pds_aws.direct.tls import CERTIFICATE_FILE, KEY_FILE, LIVE_DIR, TLS_DIR
from pds_aws.infra.compliance import acknowledge, skip_checkov
from pds_aws.infra.handlers import handler_function
from pds_aws.infra.monitoring import (
    DirectEdgeMetrics,
    line_count_metric,
    log_group,
    metric_namespace,
)
from pds_aws.infra.service import PdsTask, mount
from pds_aws.names import DATA_DIRECTORY, PDS_PORT
from pds_aws.versions import CADDY_IMAGE

PUBLIC_PORTS = (80, 443)
HANDLER_DIRECTORY = Path(__file__).resolve().parent / "dns_updater"
# Renewal starts at 30 days left (direct/tls.py): below 21, renewals have failed for 9 days.
CERTIFICATE_ALARM_DAYS = 21
CERTIFICATE_METRIC = "TlsCertificateDaysLeft"
PROXY_5XX_THRESHOLD = 5


def normalized_record_name(name: str) -> str:
    """A record name as route53:ChangeResourceRecordSetsNormalizedRecordNames compares it.

    Lower case, no trailing dot, every character other than a-z 0-9 - _ . as a backslash and
    three octal digits: '*.pds.example.com' -> '\\052.pds.example.com' (Route 53 Developer
    Guide, "Using IAM policy conditions for fine-grained access control").
    """
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    return "".join(c if c in allowed else f"\\{ord(c):03o}" for c in name.lower().rstrip("."))


def task_definition_arn_prefix(task_definition: ecs.TaskDefinition) -> str:
    """What every revision's ARN of `task_definition` starts with."""
    stack = Stack.of(task_definition)
    return (
        f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:task-definition/"
        f"{task_definition.family}:"
    )


def proxy_site(config: Config, data_directory: str, upstream_port: int) -> ProxySite:
    live = f"{data_directory}/{TLS_DIR}/{LIVE_DIR}"
    return ProxySite(
        domain=config.pds.domain,
        upstream=f"127.0.0.1:{upstream_port}",
        tls=CertificateFiles(certificate=f"{live}/{CERTIFICATE_FILE}", key=f"{live}/{KEY_FILE}"),
    )


class DirectEdge(Construct):
    """Proxy and certificate containers, public ports, DNS updater, edge alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        task: PdsTask,
        tls_image: ecs.ContainerImage,
    ) -> None:
        super().__init__(scope, construct_id)
        domain = config.pds.domain
        hosted_zone_id = config.pds.hosted_zone_id
        task_definition = task.task_definition
        security_group = task.security_group
        zone_arn = Stack.of(self).format_arn(
            service="route53", region="", account="", resource="hostedzone",
            resource_name=hosted_zone_id,
        )  # fmt: skip

        for port in PUBLIC_PORTS:
            security_group.add_ingress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"public PDS traffic on {port}"
            )
        acknowledge(
            security_group,
            {
                "AwsSolutions-EC23": (
                    "A public PDS without a load balancer: the Bluesky network must reach the "
                    "task's ports 80 and 443 from anywhere; the proxy in the task filters the "
                    "paths."
                ),
            },
        )
        skip_checkov(
            security_group,
            {"CKV_AWS_260": "port 80 only answers with a redirect to HTTPS (the proxy)"},
        )

        # --- the proxy ----------------------------------------------------------------------
        self.proxy_log_group = log_group(self, "ProxyLogGroup", config)
        site = proxy_site(config, DATA_DIRECTORY, PDS_PORT)
        self.proxy_container = task_definition.add_container(
            PROXY_CONTAINER_NAME,
            container_name=PROXY_CONTAINER_NAME,
            image=ecs.ContainerImage.from_registry(CADDY_IMAGE),
            essential=True,
            # The official image's shell writes the generated configuration and hands over to
            # Caddy; no image of our own to build for the proxy.
            entry_point=["/bin/sh", "-c"],
            command=[
                f'mkdir -p "$(dirname {CADDY_CONFIG_FILE})" && '
                f'printf "%s" "${CADDY_CONFIG_ENV}" > {CADDY_CONFIG_FILE} && '
                f"exec caddy run --config {CADDY_CONFIG_FILE}"
            ],
            environment={CADDY_CONFIG_ENV: json.dumps(caddy_config(site), sort_keys=True)},
            port_mappings=[
                ecs.PortMapping(container_port=port, name=f"proxy-{port}") for port in PUBLIC_PORTS
            ],
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=PROXY_CONTAINER_NAME, log_group=self.proxy_log_group
            ),
            stop_timeout=Duration.seconds(10),
        )
        mount(self.proxy_container, task.data_volume_name, DATA_DIRECTORY, read_only=True)

        # --- the certificate keeper -----------------------------------------------------------
        self.tls_log_group = log_group(self, "TlsLogGroup", config)
        tls_environment = {
            "PDS_DATA_DIRECTORY": DATA_DIRECTORY,
            "TLS_DOMAIN": domain,
            "ACME_DIRECTORY": config.edge.acme_directory,
            "CADDY_ADMIN": site.admin,
        }
        if config.acme_email:
            tls_environment["ACME_EMAIL"] = config.acme_email
        self.tls_container = task_definition.add_container(
            TLS_CONTAINER_NAME,
            container_name=TLS_CONTAINER_NAME,
            image=tls_image,
            # A renewal problem must not take the PDS down: the alarm reports it weeks ahead.
            essential=False,
            command=["pds-aws-tls", "run"],
            environment=tls_environment,
            health_check=ecs.HealthCheck(
                command=["CMD", "pds-aws-tls", "health"],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=10,
                # First certificate: DNS-01 waits for the TXT record to be INSYNC (~1 min).
                start_period=Duration.seconds(300),
            ),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=TLS_CONTAINER_NAME, log_group=self.tls_log_group
            ),
            stop_timeout=Duration.seconds(10),
        )
        mount(self.tls_container, task.data_volume_name, DATA_DIRECTORY, read_only=False)
        # DNS-01: certbot-dns-route53 writes and removes the TXT record _acme-challenge.<domain>.
        task_role = task_definition.task_role
        task_role.add_to_principal_policy(
            _record_changes(zone_arn, [f"_acme-challenge.{domain}"], "TXT", ["UPSERT", "DELETE"])
        )
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["route53:ListHostedZones", "route53:GetChange"], resources=["*"]
            )
        )
        acknowledge(
            task_role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "certbot-dns-route53 finds the hosted zone with route53:ListHostedZones "
                    "and waits on route53:GetChange; neither has resource-level permissions worth "
                    "scoping (GetChange ids are only known after the change). Record changes are "
                    "limited to the TXT record _acme-challenge.<domain> by condition keys."
                ),
            },
        )

        # --- DNS follows the task ------------------------------------------------------------
        self.dns_updater_log_group = log_group(self, "DnsUpdaterLogGroup", config)
        self.dns_updater = handler_function(
            self,
            "DnsUpdater",
            HANDLER_DIRECTORY,
            handler="handler.on_task_state_change",
            description=f"Points {domain} and *.{domain} at the PDS task that just started",
            timeout=Duration.seconds(30),
            memory_size=128,
            log_group=self.dns_updater_log_group,
            environment={
                "HOSTED_ZONE_ID": hosted_zone_id,
                "DOMAIN": domain,
                "TTL": str(config.edge.dns_ttl_seconds),
            },
        )
        self.dns_updater.add_to_role_policy(
            _record_changes(zone_arn, [domain, f"*.{domain}"], "A", ["UPSERT"])
        )
        self.dns_updater.add_to_role_policy(
            iam.PolicyStatement(actions=["ec2:DescribeNetworkInterfaces"], resources=["*"])
        )
        self.task_started_rule = events.Rule(
            self,
            "TaskStarted",
            description=f"PDS task RUNNING: point {domain} and *.{domain} at it",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [task.cluster.cluster_arn],
                    # Only tasks of the PDS task definition move the records, not the restore
                    # drill's. Its family, not the service name: the service waits for this
                    # rule, so the rule cannot refer to the service.
                    "taskDefinitionArn": [{"prefix": task_definition_arn_prefix(task_definition)}],
                    "lastStatus": ["RUNNING"],
                    "desiredStatus": ["RUNNING"],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.dns_updater, retry_attempts=8, max_event_age=Duration.hours(1)
                )
            ],
        )
        self._acknowledge(config)
        self.metrics = self._metrics(config)

    def _metrics(self, config: Config) -> DirectEdgeMetrics:
        """What the stack's alarms and dashboard watch in place of the load balancer's metrics."""
        certificate_days_left = logs.MetricFilter(
            self,
            "CertificateDaysLeftFilter",
            log_group=self.tls_log_group,
            filter_pattern=logs.FilterPattern.string_value("$.event", "=", "certificate"),
            metric_namespace=metric_namespace(config),
            metric_name=CERTIFICATE_METRIC,
            metric_value="$.days_left",
        ).metric(statistic="Minimum", period=Duration.hours(6))
        proxy_requests = line_count_metric(
            self,
            "ProxyRequestsFilter",
            config,
            log_group=self.proxy_log_group,
            pattern=logs.FilterPattern.string_value("$.logger", "=", "http.log.access"),
            name="ProxyRequests",
        )
        proxy_5xx = line_count_metric(
            self,
            "Proxy5xxFilter",
            config,
            log_group=self.proxy_log_group,
            pattern=logs.FilterPattern.number_value("$.status", ">=", 500),
            name="Proxy5xx",
        )
        return DirectEdgeMetrics(
            proxy_requests=proxy_requests,
            proxy_5xx=proxy_5xx,
            certificate_days_left=certificate_days_left,
            certificate_alarm_days=CERTIFICATE_ALARM_DAYS,
            dns_update_errors=self.dns_updater.metric_errors(
                period=Duration.minutes(5), statistic="Sum"
            ),
        )

    def _acknowledge(self, config: Config) -> None:
        skip_checkov(
            self.dns_updater,
            {
                "CKV_AWS_115": "one invocation per task start; reserving concurrency fails on "
                "new accounts whose limit is 10",
                "CKV_AWS_116": "EventBridge retries a failed invocation (8 attempts, 1 h) and the "
                "DnsUpdateFailed alarm reports errors; a queue would hold stale addresses",
                "CKV_AWS_117": "calls only the EC2 and Route 53 APIs; inside the VPC it would "
                "need interface endpoints or a NAT, which the design leaves out",
                "CKV_AWS_173": "the environment holds the zone id, the domain and the TTL only",
            },
        )
        acknowledge(
            self,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ec2:DescribeNetworkInterfaces has no resource-level permissions: finding "
                    "a new task's public address from its interface id needs it on '*'. It reads "
                    "interface descriptions only."
                ),
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": (
                    "The DNS updater needs only the basic logging policy; the managed policy "
                    "is the narrowest AWS offers for it."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "CDK writes the updater's policy inline on its own role: Route 53 changes "
                    "limited to the A records of the domain and *.domain, and interface reads."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "One invocation per task start; reserving concurrency fails on new "
                    "accounts whose limit is 10."
                ),
                "NIST.800.53.R5-LambdaDLQ": (
                    "EventBridge retries a failed invocation for an hour and the "
                    "DnsUpdateFailed alarm reports errors; a queued old address is of no use."
                ),
                "NIST.800.53.R5-LambdaInsideVPC": (
                    "The updater calls only the EC2 and Route 53 APIs; in the VPC it would "
                    "need interface endpoints or a NAT, which the design leaves out."
                ),
                "NIST.800.53.R5-CloudWatchLogGroupEncrypted": (
                    "Proxy access lines, certificate expiry dates and DNS changes: no secret "
                    "or account data; CloudWatch encrypts log data at rest with its own keys."
                ),
            },
        )


def _record_changes(
    zone_arn: str, names: list[str], record_type: str, actions: list[str]
) -> iam.PolicyStatement:
    """Changes in the hosted zone limited to these records (names as Route 53 normalizes
    them), this record type and these change actions."""
    return iam.PolicyStatement(
        actions=["route53:ChangeResourceRecordSets"],
        resources=[zone_arn],
        conditions={
            "ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                    normalized_record_name(name) for name in names
                ],
                "route53:ChangeResourceRecordSetsRecordTypes": [record_type],
                "route53:ChangeResourceRecordSetsActions": actions,
            }
        },
    )
