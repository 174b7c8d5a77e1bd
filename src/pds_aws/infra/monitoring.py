"""Monitoring: the PDS log group, error metric filters, alarms to an SNS topic, a dashboard.

The backup construct owns its own log group; this component watches it for errors too. The
other components count their log lines with `line_count_metric`, in the stack's namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge, skip_checkov
from pds_aws.infra.storage import removal_policy
from pds_aws.names import RATE_LIMIT_BYPASS_LOG_PATTERN

# The PDS logs JSON through pino, whose numeric levels put error at 50 and fatal at 60.
PDS_ERROR_FILTER_PATTERN = logs.FilterPattern.number_value("$.level", ">=", 50)
# Thresholds: a PDS logs the odd error (an unreachable relay, a bad request); a burst counts.
PDS_LOG_ERRORS_THRESHOLD = 5
TARGET_5XX_THRESHOLD = 5
# 5xx the load balancer makes itself (502 when a target closes a connection, 503 with no
# target, 504 on a target timeout): none of them reaches the target-5xx count.
ELB_5XX_THRESHOLD = 5
ALARM_PERIOD = Duration.minutes(1)
WINDOW = Duration.minutes(5)
METRIC_NAMESPACE_PREFIX = "PdsAws"


def pds_log_protection() -> logs.DataProtectionPolicy:
    """Mask the rate-limit bypass key in the PDS's request log lines.

    The PDS logs each request's headers, the bypass key's included (names.py); CloudWatch Logs
    masks what a data protection policy's identifiers match at ingestion, at every egress
    (console, Insights, filters), for everyone without logs:Unmask.
    """
    return logs.DataProtectionPolicy(
        name="pds-request-log",
        description="PDS request log: mask the value of the x-ratelimit-bypass header",
        identifiers=[
            logs.CustomDataIdentifier("RateLimitBypassKey", RATE_LIMIT_BYPASS_LOG_PATTERN),
        ],
    )


# CloudWatch's allowed retention periods (days) by their CDK names.
_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def no_healthy_hosts_periods(grace_period: Duration) -> int:
    """Alarm periods that outlast a normal task start, plus one period of real outage."""
    period = ALARM_PERIOD.to_seconds()
    return int(-(-grace_period.to_seconds() // period)) + 1


@dataclass(frozen=True)
class DirectEdgeMetrics:
    """What the direct edge (direct/construct.py) measures in place of the load balancer."""

    proxy_requests: cloudwatch.IMetric
    proxy_5xx: cloudwatch.IMetric
    certificate_days_left: cloudwatch.IMetric
    certificate_alarm_days: float
    dns_update_errors: cloudwatch.IMetric


def metric_namespace(config: Config) -> str:
    """Per stack, so two deployments in one account never share a metric."""
    return f"{METRIC_NAMESPACE_PREFIX}/{config.aws.stack_name}"


def line_count_metric(
    scope: Construct,
    construct_id: str,
    config: Config,
    *,
    log_group: logs.ILogGroup,
    pattern: logs.IFilterPattern,
    name: str,
    period: Duration = WINDOW,
) -> cloudwatch.Metric:
    """How many lines of `log_group` match `pattern` per `period`, as the stack's metric
    `name`; 0, not missing data, when none match."""
    return logs.MetricFilter(
        scope,
        construct_id,
        log_group=log_group,
        filter_pattern=pattern,
        metric_namespace=metric_namespace(config),
        metric_name=name,
        metric_value="1",
        default_value=0,
    ).metric(statistic="Sum", period=period)


def dashboard_name(config: Config) -> str:
    """Dashboard names are global to the account: the region keeps stacks apart."""
    return f"{config.aws.stack_name}-{config.aws.region}-pds"


def log_retention(config: Config) -> logs.RetentionDays:
    """The configured retention (config.monitoring.log_retention_days) as CDK's enum."""
    return _RETENTION[config.monitoring.log_retention_days]


def log_group(scope: Construct, id: str, config: Config, **options: Any) -> logs.LogGroup:
    """A log group with the configured retention, retained with the stack's data in prod.

    No log_group_name: a fixed name on a group retained in prod would make the next create
    after a destroy fail with "already exists".
    """
    return logs.LogGroup(
        scope,
        id,
        retention=log_retention(config),
        removal_policy=removal_policy(config),
        **options,
    )


class Monitoring(Construct):
    """Log group of the PDS container and the alarm topic; `watch` adds alarms and dashboard.

    Created in two steps because the service needs the log group before the things to watch
    exist.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.pds_log_group = log_group(
            self, "PdsLogGroup", config, data_protection_policy=pds_log_protection()
        )
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"PDS alarms ({config.pds.domain})", enforce_ssl=True
        )
        for email in config.monitoring.alarm_emails:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(email))

        acknowledge(
            self,
            {
                "NIST.800.53.R5-CloudWatchLogGroupEncrypted": (
                    "The PDS obfuscates the authorization header in its request log, and "
                    "the log group masks the rate-limit bypass key (data protection policy); "
                    "CloudWatch encrypts log data at rest with its own keys, and a customer key "
                    "would add cost without another reader to keep out."
                ),
                "NIST.800.53.R5-SNSEncryptedKMS": (
                    "Alarm notifications carry alarm names and states only, and e-mail "
                    "delivery leaves AWS unencrypted anyway."
                ),
            },
        )
        skip_checkov(
            self.alarm_topic,
            {"CKV_AWS_26": "alarm names and states only; e-mail delivery is unencrypted anyway"},
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.pds_error_metric = line_count_metric(
            self,
            "PdsErrorMetricFilter",
            config,
            log_group=self.pds_log_group,
            pattern=PDS_ERROR_FILTER_PATTERN,
            name="PdsLogErrors",
        )

    def watch(
        self,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        service: ecs.FargateService,
        backup_error_metric: cloudwatch.IMetric | None,
        drill_failed_alarm: cloudwatch.Alarm | None,
        grace_period: Duration,
    ) -> None:
        """The alarms (all to the SNS topic) and the dashboard.

        `grace_period` is how long a new task may take to become healthy: a first create, a
        deploy and a replacement each leave the target group without a healthy host that long
        (one task, minimum 0 %), which must not page the operator.
        """
        tg = target_group.metrics
        self._alarm(
            "UnhealthyHosts",
            "The load balancer sees an unhealthy PDS task (failing /xrpc/_health).",
            tg.unhealthy_host_count(statistic="Maximum", period=ALARM_PERIOD),
            threshold=1,
            evaluation_periods=5,
            datapoints_to_alarm=3,
        )
        self._alarm(
            "NoHealthyHosts",
            "No healthy PDS task behind the load balancer for longer than a task start may "
            "take: the PDS is down.",
            tg.healthy_host_count(statistic="Minimum", period=ALARM_PERIOD),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=no_healthy_hosts_periods(grace_period),
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "TooManyHealthyHosts",
            "More than one healthy PDS task: two PDS processes may be writing one data set.",
            tg.healthy_host_count(statistic="Maximum", period=ALARM_PERIOD),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
        )
        self._alarm(
            "Target5xx",
            "The PDS answers with server errors (HTTP 5xx).",
            tg.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, statistic="Sum"),
            threshold=TARGET_5XX_THRESHOLD,
        )
        self._alarm(
            "LoadBalancer5xx",
            "The load balancer answers with its own server errors (HTTP 5xx: no healthy "
            "target, a connection the PDS closed, a timeout).",
            load_balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, statistic="Sum"),
            threshold=ELB_5XX_THRESHOLD,
        )
        self._log_and_drill_alarms(backup_error_metric, drill_failed_alarm)
        self._dashboard(load_balancer, target_group, service, backup_error_metric)

    def _log_and_drill_alarms(
        self,
        backup_error_metric: cloudwatch.IMetric | None,
        drill_failed_alarm: cloudwatch.Alarm | None,
    ) -> None:
        """The alarms both edge shapes share: PDS log errors, backup errors, the drill."""
        self._alarm(
            "PdsLogErrors",
            "The PDS logs errors (level error or fatal) in its log group.",
            self.pds_error_metric,
            threshold=PDS_LOG_ERRORS_THRESHOLD,
        )
        if backup_error_metric is not None:
            self._alarm(
                "BackupErrors",
                "The backup sidecar logs errors: replication or key upload may be failing.",
                backup_error_metric,
                threshold=1,
            )
        if drill_failed_alarm is not None:
            self._notify(drill_failed_alarm)
            self.alarms["RestoreDrillFailed"] = drill_failed_alarm

    def add_alarm(
        self,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        """An alarm on another component's metric, to the alarm topic like every other."""
        self._alarm(name, description, metric, threshold=threshold, missing=missing)

    def _alarm(
        self,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            alarm_description=f"{description} ({self._config.pds.domain})",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=missing,
        )
        self._notify(alarm)
        self.alarms[name] = alarm

    def _notify(self, alarm: cloudwatch.Alarm) -> None:
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)

    def _dashboard(
        self,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        service: ecs.FargateService,
        backup_error_metric: cloudwatch.IMetric | None,
    ) -> None:
        lb = load_balancer.metrics
        tg = target_group.metrics
        self._add_dashboard(
            [
                _graph("Requests", lb.request_count(statistic="Sum")),
                _graph(
                    "Latency (target response time)",
                    tg.target_response_time(statistic="p50"),
                    tg.target_response_time(statistic="p99"),
                ),
                _graph(
                    "HTTP 5xx",
                    tg.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, statistic="Sum"),
                    lb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, statistic="Sum"),
                ),
            ],
            _graph("Healthy / unhealthy tasks", tg.healthy_host_count(), tg.unhealthy_host_count()),
            service,
            backup_error_metric,
        )

    def _add_dashboard(
        self,
        traffic: list[cloudwatch.IWidget],
        edge_health: cloudwatch.IWidget,
        service: ecs.FargateService,
        backup_error_metric: cloudwatch.IMetric | None,
    ) -> None:
        """The dashboard: the edge's traffic; the task's CPU and memory, the edge's health and
        the log errors; every alarm's state."""
        errors: list[cloudwatch.IMetric] = [self.pds_error_metric]
        if backup_error_metric is not None:
            errors.append(backup_error_metric)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name(self._config),
            widgets=[
                traffic,
                [
                    _graph(
                        "Task CPU and memory (%)",
                        service.metric_cpu_utilization(),
                        service.metric_memory_utilization(),
                    ),
                    edge_health,
                    _graph("Log errors", *errors),
                ],
                [
                    cloudwatch.AlarmStatusWidget(
                        title="Alarms", alarms=list(self.alarms.values()), width=24
                    )
                ],
            ],
        )

    def watch_direct(
        self,
        *,
        service: ecs.FargateService,
        edge: DirectEdgeMetrics,
        health_check_status: cloudwatch.IMetric,
        backup_error_metric: cloudwatch.IMetric | None,
        drill_failed_alarm: cloudwatch.Alarm | None,
    ) -> None:
        """Alarms and dashboard of the direct edge (no load balancer, no target group).

        The load balancer's host counts have no equivalent here. "Unhealthy" and "no healthy
        hosts" are both the external Route 53 health check's alarm (in us-east-1,
        direct/health_stack.py): it sees what users see, a missing task included, so a second
        "no running task" alarm would page twice for one outage and cost an alarm metric
        beyond CloudWatch's ten free ones. "Too many healthy hosts" has none (ECS's service
        metrics do not count tasks; the backup lease still keeps a second task from writing).
        """
        self._alarm(
            "Proxy5xx",
            "The PDS or the proxy in front of it answers with server errors (HTTP 5xx).",
            edge.proxy_5xx,
            threshold=TARGET_5XX_THRESHOLD,
        )
        self._alarm(
            "CertificateExpiring",
            f"The TLS certificate expires in less than {edge.certificate_alarm_days:.0f} days: "
            "renewals are failing (see the tls container's log), or the certificate keeper "
            "stopped.",
            edge.certificate_days_left,
            threshold=edge.certificate_alarm_days,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "DnsUpdateFailed",
            "The DNS records could not be pointed at a new PDS task: the domain may name an "
            "old address (see the DNS updater's log).",
            edge.dns_update_errors,
            threshold=1,
        )
        self._log_and_drill_alarms(backup_error_metric, drill_failed_alarm)
        self._add_dashboard(
            [
                _graph("Requests (proxy)", edge.proxy_requests),
                _graph("External health check (Route 53, us-east-1)", health_check_status),
                _graph("HTTP 5xx (proxy)", edge.proxy_5xx),
            ],
            _graph("Certificate days left", edge.certificate_days_left),
            service,
            backup_error_metric,
        )


def _graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
    """A third of a dashboard row: `metrics` on the left axis."""
    return cloudwatch.GraphWidget(title=title, left=list(metrics), width=8)
