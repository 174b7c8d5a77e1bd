"""The relay watchdog's infrastructure: a scheduled function and the two metrics it feeds.

Why a function and not the backup sidecar: the checks need only the PDS's public URL and the
relays, so the function holds no AWS permission beyond writing its own log stream, while the
sidecar's role can read every account's signing key; a relay that hangs never delays backup.
The function runs outside the VPC (the VPC has no NAT; the relays are on the internet).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, IgnoreMode, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge, skip_checkov
from pds_aws.infra.monitoring import line_count_metric, log_group

# The asset is `pds_aws/__init__.py`, `errors.py` and this package's runtime modules.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_MODULES = ("__init__.py", "facts.py", "watchdog.py")
ASSET_EXCLUDE = [
    "*",
    "!pds_aws/",
    "pds_aws/*",
    "!pds_aws/__init__.py",
    "!pds_aws/errors.py",
    "!pds_aws/relay/",
    "pds_aws/relay/*",
    *(f"!pds_aws/relay/{module}" for module in RUNTIME_MODULES),
]
HANDLER = "pds_aws.relay.watchdog.handler"
# One check of every account at each relay fits well inside this, even for 1,000 accounts.
TIMEOUT = Duration.minutes(5)
WARN_FILTER_PATTERN = logs.FilterPattern.literal('"WARN relay:"')


class RelayWatchdog(Construct):
    """Checks the relays every `[monitoring] relay_check` minutes; exposes its alarm metrics."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.log_group = log_group(self, "Logs", config)
        # Least privilege: its own log group only (no managed policy, no other AWS API).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Relay watchdog: writes its own log streams, nothing else",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=f"Relay watchdog of {config.pds.domain}: host and account status at "
            "each relay, crawl requested again when idle or unknown",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(SOURCE_ROOT), exclude=ASSET_EXCLUDE, ignore_mode=IgnoreMode.GIT
            ),
            timeout=TIMEOUT,
            memory_size=128,
            retry_attempts=0,
            role=self.role,
            log_group=self.log_group,
            environment={
                "PDS_HOSTNAME": config.pds.domain,
                "PDS_URL": f"https://{config.pds.domain}",
                "RELAYS": ",".join(config.pds.crawlers),
                "RELAY_ACCOUNT_LIMIT": str(config.relay.account_limit),
                "RELAY_LAG_THRESHOLD_S": str(config.relay.lag_threshold_minutes * 60),
            },
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Runs the relay watchdog",
            schedule=events.Schedule.rate(Duration.minutes(config.monitoring.relay_check)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        # An alarm finding fails the invocation; a run that cannot finish fails it too.
        self.alarm_metric = self.function.metric_errors(
            statistic="Sum", period=Duration.minutes(config.monitoring.relay_check)
        )
        self.warning_metric = line_count_metric(
            self,
            "WarningFilter",
            config,
            log_group=self.log_group,
            pattern=WARN_FILTER_PATTERN,
            name="RelayWarnings",
            period=Duration.minutes(config.monitoring.relay_check),
        )
        self._acknowledge(config)

    def _acknowledge(self, config: Config) -> None:
        skip_checkov(
            self.function,
            {
                "CKV_AWS_115": "runs are 15 minutes apart and time out after 5, so they never "
                "overlap; reserving concurrency fails on new accounts whose limit is 10",
                "CKV_AWS_116": "a scheduled check: a failed run is retried by the next one, and "
                "the failure itself is the alarm signal",
                "CKV_AWS_117": "must reach relays on the internet; the VPC has no NAT",
                "CKV_AWS_173": "its environment holds only public names (domain, relay URLs)",
            },
        )
        role_id = Stack.of(self).get_logical_id(self.log_group.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            self,
            {
                "NIST.800.53.R5-LambdaInsideVPC": (
                    "The watchdog calls relays on the internet and the VPC has no NAT; it "
                    "holds no AWS permission beyond its own log group."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Runs are at least 5 minutes apart and time out after 5, so they never "
                    "overlap; reserving concurrency fails on new accounts whose limit is 10."
                ),
                "NIST.800.53.R5-LambdaDLQ": (
                    "A scheduled check: a failed run is retried by the next schedule tick, "
                    "and the failure is what the alarm counts."
                ),
                "NIST.800.53.R5-CloudWatchLogGroupEncrypted": (
                    "The watchdog logs only public facts (hostnames, DIDs, revs, statuses); "
                    "CloudWatch encrypts log data at rest with its own keys."
                ),
                f"AwsSolutions-IAM5[Resource::<{role_id}.Arn>:*]": (
                    "Log streams of the watchdog's own log group; their names are chosen "
                    "by Lambda at run time."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The watchdog role's one inline statement is scoped to its own log "
                    "group; a managed policy would be broader."
                ),
            },
        )
