"""The PDS stack: reads like the architecture diagram in guides/ARCHITECTURE.md.

Components are created with typed, keyword-only arguments; the wiring between them (grants,
start order, alarm actions) is done here, in one visible place.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import (
    Aspects,
    CfnOutput,
    CfnResource,
    Duration,
    Fn,
    IAspect,
    Stack,
    TagManager,
    Tags,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from constructs import Construct, IConstruct

from pds_aws.backup.construct import (
    HEALTH_CHECK_INTERVAL,
    HEALTH_CHECK_RETRIES,
    HEALTH_CHECK_START_PERIOD,
    BackupSidecar,
    grant_backup_access,
)
from pds_aws.config import Config
from pds_aws.direct.construct import DirectEdge
from pds_aws.direct.health_stack import HEALTH_REGION
from pds_aws.email.construct import Email
from pds_aws.infra.alb import HEALTH_CHECK_INTERVAL as ALB_HEALTH_CHECK_INTERVAL
from pds_aws.infra.alb import HEALTHY_THRESHOLD, Edge
from pds_aws.infra.compliance import StackWideCheckovSkips, acknowledge, nag_text, skip_checkov
from pds_aws.infra.monitoring import Monitoring
from pds_aws.infra.network import AZ_COUNT, Network
from pds_aws.infra.operator import Operator
from pds_aws.infra.pds_secret import PdsSecret
from pds_aws.infra.service import PdsService
from pds_aws.infra.storage import ROTATION_KEY_USE_ACTIONS, Storage
from pds_aws.names import (
    BACKUP_PREFIX,
    IMAGE_TAG_LABEL,
    PDS_CONTAINER,
    PDS_PORT,
)
from pds_aws.pipeline.stage_configs import production_steps_role_arn
from pds_aws.relay.construct import RelayWatchdog

PROJECT_TAG = "pds-aws"
SMTP_GENERATION_LABEL = "pds-aws.smtp-credentials-generation"
# The PDS opens its databases, runs migrations and answers its health URL within seconds
# locally; a minute covers a cold Fargate start of the image.
PDS_START_MARGIN = Duration.seconds(60)
# The dashboard's view of the account's Route 53 health checks (their metrics are in us-east-1,
# the check itself in the health stack, whose id this stack cannot reference across regions).
HEALTH_CHECK_SEARCH = (
    "SEARCH('{AWS/Route53,HealthCheckId} MetricName=\"HealthCheckStatus\"', 'Minimum', 60)"
)


def health_check_grace_period() -> Duration:
    """How long a new task may take to become healthy (ECS ignores the ALB's verdict so long).

    The sidecar may restore for its whole health window (start period + retries x interval)
    before the PDS may start; then the PDS starts and must pass HEALTHY_THRESHOLD ALB checks.
    """
    restore_window = HEALTH_CHECK_START_PERIOD.to_seconds() + (
        HEALTH_CHECK_RETRIES * HEALTH_CHECK_INTERVAL.to_seconds()
    )
    alb_checks = HEALTHY_THRESHOLD * ALB_HEALTH_CHECK_INTERVAL.to_seconds()
    return Duration.seconds(restore_window + PDS_START_MARGIN.to_seconds() + alb_checks)


# Types CDK's own custom-resource providers create as plain CfnResources, out of Tags' reach.
_RAW_TAGGABLE_TYPES = frozenset({"AWS::Lambda::Function", "AWS::IAM::Role"})


@jsii.implements(IAspect)
class _TagRawResources:
    """Give CDK-internal provider functions and roles the stack's tags too."""

    def __init__(self, tags: dict[str, str]) -> None:
        self._tags = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]

    def visit(self, node: IConstruct) -> None:
        if (
            isinstance(node, CfnResource)
            and node.cfn_resource_type in _RAW_TAGGABLE_TYPES
            and not TagManager.is_taggable(node)
        ):
            node.add_property_override("Tags", self._tags)


class PdsStack(Stack):
    """One Bluesky PDS: network, edge, storage, e-mail, service, backup, monitoring.

    The edge is `[edge] kind`: an ALB (infra/alb.py), or "direct" (direct/construct.py: the
    task's own address, a TLS proxy in the task, DNS records that follow the task; its
    external health check lives in a us-east-1 stack, direct/health_stack.py).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        # Set by infra.synth.add_stack: the us-east-1 health-check stack of the direct edge.
        self.health_stack: Stack | None = None
        region = config.aws.region

        hosted_zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "HostedZone",
            hosted_zone_id=config.pds.hosted_zone_id,
            zone_name=config.pds.hosted_zone_name,
        )
        network = Network(self, "Network", container_insights=config.monitoring.container_insights)
        edge = (
            None
            if config.is_direct
            else Edge(
                self,
                "Edge",
                config=config,
                vpc=network.vpc,
                vpc_subnets=network.public_subnets,
                hosted_zone=hosted_zone,
            )
        )
        email = Email(self, "Email", config=config, hosted_zone=hosted_zone, region=region)
        storage = Storage(self, "Storage", config=config, s3_endpoint=network.s3_endpoint)
        monitoring = Monitoring(self, "Monitoring", config=config)
        secrets = PdsSecret(self, "Secrets", config=config)
        service = PdsService(
            self,
            "Pds",
            config=config,
            cluster=network.cluster,
            vpc_subnets=network.public_subnets,
            blob_bucket=storage.blob_bucket,
            rotation_key=storage.rotation_key,
            secrets=secrets,
            smtp_url_secret=email.smtp_url_secret,
            log_group=monitoring.pds_log_group,
            region=region,
            # ECS reads PDS_EMAIL_SMTP_URL only when a task starts: a new SMTP key must bring
            # a new task definition revision, hence a deployment that starts a new task.
            # The image tag label tells `pds-aws upgrade` which tag the stack deployed.
            restart_labels={
                SMTP_GENERATION_LABEL: email.credentials_generation,
                IMAGE_TAG_LABEL: config.pds.image_version_tag,
            },
        )

        backup = BackupSidecar(
            self, "Backup", config=config, task=service.task, backup_bucket=storage.backup_bucket
        )
        # Restore must finish before the PDS opens its databases.
        service.container.add_container_dependencies(
            ecs.ContainerDependency(
                container=backup.container, condition=ecs.ContainerDependencyCondition.HEALTHY
            )
        )

        direct: DirectEdge | None = None
        grace_period = health_check_grace_period()
        if edge is not None:
            # The load balancer reaches the PDS container, and only it, on the PDS port.
            edge.target_group.add_target(
                service.service.load_balancer_target(
                    container_name=PDS_CONTAINER, container_port=PDS_PORT
                )
            )
            cfn_service = service.service.node.default_child
            assert isinstance(cfn_service, ecs.CfnService)
            cfn_service.health_check_grace_period_seconds = int(grace_period.to_seconds())
        else:
            direct = DirectEdge(
                self, "Direct", config=config, task=service.task, tls_image=backup.image
            )
            # The first task's RUNNING event must find the DNS updater's rule in place.
            service.service.node.add_dependency(direct.task_started_rule)
            # The certificate and the ACME account come back with the restore; the proxy
            # starts once the sidecar has restored and the certificate is in place.
            direct.tls_container.add_container_dependencies(
                ecs.ContainerDependency(
                    container=backup.container,
                    condition=ecs.ContainerDependencyCondition.HEALTHY,
                )
            )
            direct.proxy_container.add_container_dependencies(
                ecs.ContainerDependency(
                    container=backup.container,
                    condition=ecs.ContainerDependencyCondition.HEALTHY,
                ),
                ecs.ContainerDependency(
                    container=direct.tls_container,
                    condition=ecs.ContainerDependencyCondition.HEALTHY,
                ),
            )

        # The first task must read the SMTP URL the custom resource writes, not the placeholder.
        service.service.node.add_dependency(email.smtp_credentials)

        # Grants: the PDS reads and writes blobs, and only signs with the rotation key.
        task_role = service.task_definition.task_role
        # The S3 blobstore puts, copies (get + put), reads and deletes blob objects.
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[storage.blob_bucket.arn_for_objects("*")],
            )
        )
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"], resources=[storage.blob_bucket.bucket_arn]
            )
        )
        blob_objects = nag_text(self, storage.blob_bucket.arn_for_objects("*"))
        skip_checkov(
            service.task_definition.task_role.node.find_child("DefaultPolicy"),
            {
                "CKV_AWS_111": "writes are constrained to this stack's blob bucket objects, "
                "and ECS Exec's ssmmessages actions have no resource-level permissions",
            },
        )
        acknowledge(
            task_role,
            {
                f"AwsSolutions-IAM5[Resource::{blob_objects}]": (
                    "Blob keys are content ids chosen at upload: the PDS needs every object "
                    "of its own blob bucket, and only of that bucket."
                ),
            },
        )
        storage.rotation_key.grant(task_role, *ROTATION_KEY_USE_ACTIONS)
        storage.allow_signing(task_role)

        # The backup bucket holds every account's signing key: only the PDS task, the drill
        # and the operator role may read its objects.
        operator = Operator(self, "Operator", config=config)
        grant_backup_access(storage.backup_bucket, operator.role, write=False)
        # With [pipeline] on, the pipeline's upgrade and smoke steps read the backup too.
        pipeline_role_arn = production_steps_role_arn(config)
        pipeline_readers = (
            [iam.Role.from_role_arn(self, "PipelineOperatorRole", pipeline_role_arn, mutable=False)]
            if pipeline_role_arn
            else []
        )
        storage.restrict_backup_reads(
            [task_role, backup.drill_task_definition.task_role, operator.role, *pipeline_readers]
        )
        backup_objects = nag_text(self, storage.backup_bucket.arn_for_objects(f"{BACKUP_PREFIX}/*"))
        acknowledge(
            operator.role,
            {
                f"AwsSolutions-IAM5[Resource::{backup_objects}]": (
                    "The operator reads every backup object, each named at runtime, under "
                    "the backup prefix of this stack's backup bucket only."
                ),
            },
        )

        if edge is not None:
            monitoring.watch(
                load_balancer=edge.load_balancer,
                target_group=edge.target_group,
                service=service.service,
                backup_error_metric=backup.error_metric,
                drill_failed_alarm=backup.drill_failed_alarm,
                grace_period=grace_period,
            )
        else:
            assert direct is not None
            monitoring.watch_direct(
                service=service.service,
                edge=direct.metrics,
                # Route 53 health-check metrics exist only in us-east-1 (the health stack).
                health_check_status=cloudwatch.MathExpression(
                    expression=HEALTH_CHECK_SEARCH,
                    search_region=HEALTH_REGION,
                    label="HealthCheckStatus",
                    period=Duration.minutes(1),
                ),
                backup_error_metric=backup.error_metric,
                drill_failed_alarm=backup.drill_failed_alarm,
            )
        # The stopped-task event of a failed drill (with ECS's stoppedReason) reaches the
        # operator beside the alarm; an SNS topic policy is per topic, not an account quota.
        backup.drill_failed_rule.add_target(targets.SnsTopic(monitoring.alarm_topic))

        if config.monitoring.relay_check:
            relay_watchdog = RelayWatchdog(self, "RelayWatchdog", config=config)
            monitoring.add_alarm(
                "RelayTrouble",
                "A relay throttles, lost or banned this host or an account, or a commit lags "
                "(see the relay watchdog's log; pds-aws doctor names the fix).",
                relay_watchdog.alarm_metric,
                threshold=1,
            )
            monitoring.add_alarm(
                "RelayWarnings",
                "The relay watchdog warns: accounts approach the relay's limit, or a commit "
                "has not propagated yet (pds-aws doctor drafts the limit request).",
                relay_watchdog.warning_metric,
                threshold=1,
            )
            self.relay_watchdog = relay_watchdog

        self.network = network
        self.edge = edge
        self.direct = direct
        self.email = email
        self.backup = backup
        self.storage = storage
        self.monitoring = monitoring
        self.secrets = secrets
        self.service = service

        # Both name the one PDS secret (operator commands read its JSON keys); two outputs
        # so that commands keep working against stacks deployed before it was one.
        CfnOutput(self, "AdminPasswordSecretArn", value=secrets.secret.secret_arn)
        CfnOutput(self, "SmtpUrlSecretArn", value=email.smtp_url_secret.secret_arn)
        CfnOutput(self, "RateLimitBypassSecretArn", value=secrets.secret.secret_arn)
        CfnOutput(self, "BlobBucketName", value=storage.blob_bucket.bucket_name)
        CfnOutput(self, "BackupBucketName", value=storage.backup_bucket.bucket_name)
        CfnOutput(self, "OperatorRoleArn", value=operator.role.role_arn)
        if storage.adopted:
            # The adopted rotation key's policy, for `aws kms put-key-policy` (guides/DEPLOY.md,
            # "Recover into a new stack"): CloudFormation cannot write an imported key's policy.
            CfnOutput(
                self,
                "RotationKeyPolicy",
                value=storage.rotation_key_policy_json(),
                description="Put this policy on the adopted PLC rotation key after the deploy",
            )
            CfnOutput(self, "RotationKeyArn", value=storage.rotation_key.key_arn)
        CfnOutput(self, "ClusterName", value=network.cluster.cluster_name)
        CfnOutput(self, "ServiceName", value=service.service.service_name)
        CfnOutput(self, "Url", value=f"https://{config.pds.domain}")
        if edge is not None:
            CfnOutput(self, "LoadBalancerDnsName", value=edge.load_balancer.load_balancer_dns_name)

        Aspects.of(self).add(StackWideCheckovSkips())

        tags = {
            "project": PROJECT_TAG,
            "pds-domain": config.pds.domain,
            "pds-mode": config.aws.mode.value,
        }
        for key, value in tags.items():
            Tags.of(self).add(key, value)
        Aspects.of(self).add(_TagRawResources(tags))

    @property
    def availability_zones(self) -> list[str]:
        # Resolved by CloudFormation at deploy time: synth needs no credentials and no
        # context lookups, even with an explicit account and region.
        return [Fn.select(i, Fn.get_azs()) for i in range(AZ_COUNT)]
