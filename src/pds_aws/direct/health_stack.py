"""The direct edge's external health check and its alarm, in us-east-1 whatever the region.

Route 53 health checkers probe the PDS's health endpoint from several AWS locations, as a relay
or a user would reach it: through DNS, the task's public address and the proxy. Over HTTP on
port 80, where the proxy passes the health path to the PDS (direct/caddy.py): HTTPS is a
Route 53 optional feature costing more than the check itself, and the certificate has its own
alarm. Route 53
publishes health-check metrics only in us-east-1 ("Monitoring health check status and getting
notifications", Route 53 Developer Guide), and an alarm and its SNS action must be in the
metric's region, so this small second stack lives there: the health check, the "PDS
unreachable" alarm and an alarm topic with the same subscribers as the main stack's.

A second stack rather than a cross-region custom resource: plain CloudFormation resources,
no Lambda, nothing for cdk-nag to forgive, and `cdk deploy --all` deploys both.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge
from pds_aws.routes import HEALTH_CHECK_PATH

HEALTH_REGION = "us-east-1"
# Seconds between two probes of one checker (10 is "fast", billed as an optional feature).
REQUEST_INTERVAL = 30
# Consecutive failed probes before a checker calls the endpoint unhealthy.
FAILURE_THRESHOLD = 3
ALARM_PERIOD = Duration.minutes(1)
ALARM_EVALUATION_PERIODS = 2


def health_stack_name(config: Config) -> str:
    return f"{config.aws.stack_name}-Health"


class HealthCheckStack(Stack):
    """Route 53 health check of http://<domain>/xrpc/_health, alarm and topic (us-east-1)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        domain = config.pds.domain
        self.health_check = route53.CfnHealthCheck(
            self,
            "PdsHealthCheck",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTP",
                fully_qualified_domain_name=domain,
                port=80,
                resource_path=HEALTH_CHECK_PATH,
                request_interval=REQUEST_INTERVAL,
                failure_threshold=FAILURE_THRESHOLD,
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"PDS {domain}")
            ],
        )
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"PDS alarms ({domain}, us-east-1)", enforce_ssl=True
        )
        for email in config.monitoring.alarm_emails:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(email))
        acknowledge(
            self.alarm_topic,
            {
                "NIST.800.53.R5-SNSEncryptedKMS": (
                    "Alarm notifications carry alarm names and states only, and e-mail "
                    "delivery leaves AWS unencrypted anyway."
                ),
            },
            checkov={
                "CKV_AWS_26": "alarm names and states only; e-mail delivery is unencrypted anyway"
            },
        )
        status = cloudwatch.Metric(
            namespace="AWS/Route53",
            metric_name="HealthCheckStatus",
            dimensions_map={"HealthCheckId": self.health_check.attr_health_check_id},
            statistic="Minimum",
            period=ALARM_PERIOD,
        )
        self.unhealthy_alarm = cloudwatch.Alarm(
            self,
            "PdsUnhealthyAlarm",
            alarm_description=(
                f"Route 53 health checkers cannot get a healthy answer from "
                f"http://{domain}{HEALTH_CHECK_PATH}: the PDS is down or unreachable ({domain})"
            ),
            metric=status,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=ALARM_EVALUATION_PERIODS,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        self.unhealthy_alarm.add_alarm_action(action)
        self.unhealthy_alarm.add_ok_action(action)
