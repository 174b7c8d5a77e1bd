"""Monitoring: the PDS log group, error metric filters, alarms to an SNS topic, a dashboard.

The backup construct owns its own log group; this component watches it for errors too.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pds_aws.config import Config

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


def log_retention(config: Config) -> logs.RetentionDays:
    """The configured retention (config.monitoring.log_retention_days) as CDK's enum."""
    return _RETENTION[config.monitoring.log_retention_days]


class Monitoring(Construct):
    """Log group for the PDS container and the alarm topic; alarms are added by `watch`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.pds_log_group = logs.LogGroup(
            self,
            "PdsLogGroup",
            retention=log_retention(config),
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"PDS alarms ({config.pds.domain})", enforce_ssl=True
        )
        for email in config.monitoring.alarm_emails:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(email))
