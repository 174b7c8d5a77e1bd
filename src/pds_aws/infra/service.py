"""The PDS service: one Fargate task running the official PDS image, unmodified.

The task definition is the contract the local runtime reads back from the synthesized
template: container `pds`, its environment, secrets, health check and the data volume at
`/pds`. The backup sidecar (pds_aws.backup.construct) adds container `backup` to the same
task definition; the stack wires the start order between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from pds_aws.config import Architecture, Config
from pds_aws.infra.compliance import acknowledge
from pds_aws.infra.images import pds_image_copy
from pds_aws.names import DATA_DIRECTORY, PDS_CONTAINER, PDS_HEALTH_URL, PDS_PORT

if TYPE_CHECKING:  # the backup construct imports this module, and pds_secret imports it back
    from pds_aws.infra.pds_secret import PdsSecret

# The PDS's S3 upload timeout covers the whole client -> PDS -> S3 stream of one blob (its
# default, 20 s, is the floor here). A blob of the upload limit must fit at this client
# bandwidth: 2 Mbit/s, a slow home or mobile uplink.
MIN_CLIENT_UPLOAD_BYTES_PER_SECOND = 250_000
PDS_DEFAULT_UPLOAD_TIMEOUT_MS = 20_000
DATA_VOLUME_NAME = "pds-data"
# The official image is node:alpine; node is the one tool it is sure to carry, so the
# container health check uses it rather than curl or wget.
PDS_HEALTH_COMMAND = (
    f"node -e \"fetch('{PDS_HEALTH_URL}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))\""
)


def pds_image(config: Config) -> str:
    """The official image at the pinned tag (or digest), as published on ghcr.io: the source
    of the copy into the stack's ECR."""
    return config.pds.image_reference


def blob_upload_timeout_ms(upload_limit_bytes: int) -> int:
    """PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS: the PDS default plus the limit at the slow bandwidth."""
    streaming_ms = -(-upload_limit_bytes * 1000 // MIN_CLIENT_UPLOAD_BYTES_PER_SECOND)
    return PDS_DEFAULT_UPLOAD_TIMEOUT_MS + streaming_ms


def pds_environment(
    config: Config, *, blob_bucket_name: str, rotation_key_id: str, region: str
) -> dict[str, str]:
    """Every plain (non-secret) PDS setting; names as read by @atproto/pds config/env.ts."""
    pds = config.pds
    env = {
        "PDS_HOSTNAME": pds.domain,
        "PDS_PORT": str(PDS_PORT),
        "PDS_DATA_DIRECTORY": DATA_DIRECTORY,
        # Litestream owns checkpoints: an automatic checkpoint would race its WAL copy.
        "PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT": "true",
        "PDS_BLOBSTORE_S3_BUCKET": blob_bucket_name,
        "PDS_BLOBSTORE_S3_REGION": region,
        "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS": str(
            blob_upload_timeout_ms(pds.blob_upload_limit_bytes)
        ),
        "PDS_PLC_ROTATION_KEY_KMS_KEY_ID": rotation_key_id,
        "PDS_DID_PLC_URL": pds.plc_url,
        "PDS_BSKY_APP_VIEW_URL": pds.app_view_url,
        "PDS_BSKY_APP_VIEW_DID": pds.app_view_did,
        "PDS_REPORT_SERVICE_URL": pds.report_service_url,
        "PDS_REPORT_SERVICE_DID": pds.report_service_did,
        "PDS_CRAWLERS": ",".join(pds.crawlers),
        "PDS_SERVICE_HANDLE_DOMAINS": ",".join(pds.service_handle_domains),
        "PDS_BLOB_UPLOAD_LIMIT": str(pds.blob_upload_limit_bytes),
        "PDS_INVITE_REQUIRED": "true" if pds.invite_required else "false",
        # Per-address limits on logins (30 per 5 min per account), sign-ups (100 per 5 min)
        # and all requests (3,000 per 5 min); the edge has no WAF, so this is the flood guard.
        # Operator tools that exceed them carry PDS_RATE_LIMIT_BYPASS_KEY (a secret).
        "PDS_RATE_LIMITS_ENABLED": "true",
        "PDS_EMAIL_FROM_ADDRESS": pds.email_from_address,
        "LOG_ENABLED": "true",
        "LOG_LEVEL": pds.log_level,
        # The AWS SDK inside the PDS (KMS, S3) needs the region spelled out.
        "AWS_REGION": region,
    }
    if pds.contact_email:
        env["PDS_CONTACT_EMAIL_ADDRESS"] = pds.contact_email
    return env


@dataclass(frozen=True)
class PdsTask:
    """What the containers and tasks beside the PDS share with it: the cluster and network it
    runs in, its task definition and its data volume."""

    cluster: ecs.ICluster
    task_definition: ecs.FargateTaskDefinition
    data_volume_name: str
    vpc_subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup
    assign_public_ip: bool


class PdsService(Construct):
    """Fargate task definition with container `pds`, and the service running one copy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        cluster: ecs.ICluster,
        vpc_subnets: ec2.SubnetSelection,
        blob_bucket: s3.IBucket,
        rotation_key: kms.IKey,
        secrets: PdsSecret,
        smtp_url_secret: secretsmanager.ISecret | None,
        log_group: logs.ILogGroup,
        region: str,
        restart_labels: Mapping[str, str] | None = None,
    ) -> None:
        """`restart_labels`: docker labels whose change must replace the running task (the
        task reads its ECS secrets only when it starts)."""
        super().__init__(scope, construct_id)
        task = config.task
        # The official image, copied into the stack's ECR at deploy time (see images.py).
        self.image_build = pds_image_copy(
            self, "Image", reference=pds_image(config), architecture=task.architecture
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=task.cpu,
            memory_limit_mib=task.memory,
            ephemeral_storage_gib=task.ephemeral_storage_setting,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=(
                    ecs.CpuArchitecture.ARM64
                    if task.architecture is Architecture.ARM64
                    else ecs.CpuArchitecture.X86_64
                ),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        # A Fargate volume without a host path lives on the task's ephemeral storage and is
        # shared by the containers mounting it: the PDS and the backup sidecar.
        self.task_definition.add_volume(name=DATA_VOLUME_NAME)

        container_secrets = secrets.ecs_secrets()
        if smtp_url_secret is not None:
            container_secrets["PDS_EMAIL_SMTP_URL"] = ecs.Secret.from_secrets_manager(
                smtp_url_secret
            )
        self.container = self.task_definition.add_container(
            PDS_CONTAINER,
            container_name=PDS_CONTAINER,
            image=self.image_build.to_ecs_docker_image_code(),
            essential=True,
            environment=pds_environment(
                config,
                blob_bucket_name=blob_bucket.bucket_name,
                rotation_key_id=rotation_key.key_id,
                region=region,
            ),
            secrets=container_secrets,
            docker_labels=dict(restart_labels) if restart_labels else None,
            port_mappings=[ecs.PortMapping(container_port=PDS_PORT, name="pds-http")],
            logging=ecs.LogDrivers.aws_logs(log_group=log_group, stream_prefix=PDS_CONTAINER),
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", PDS_HEALTH_COMMAND],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            ),
            # The PDS closes its databases on SIGTERM; give it time before the sidecar's
            # final sync.
            stop_timeout=Duration.seconds(30),
        )
        mount(self.container, DATA_VOLUME_NAME, DATA_DIRECTORY, read_only=False)

        acknowledge(
            self.task_definition,
            {
                "AwsSolutions-ECS2": (
                    "Only non-secret PDS settings (hostname, bucket name, key id, service "
                    "URLs) are plain environment; the secrets are ECS secrets from Secrets Manager."
                ),
                "AwsSolutions-IAM5[Resource::*]": (
                    "ECS Exec's ssmmessages actions and the log stream actions CDK adds for "
                    "it have no resource-level permissions."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "CDK's grants write the task and execution roles' policies; each is "
                    "scoped to this stack's buckets, key, secrets and log group."
                ),
            },
        )
        security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=cluster.vpc,
            description=(
                "PDS task: inbound 80 and 443 from the internet (its TLS proxy), outbound "
                "to the network"
                if config.is_direct
                else "PDS task: inbound only from the load balancer, outbound to the network"
            ),
            allow_all_outbound=True,
        )
        self.task = PdsTask(
            cluster=cluster,
            task_definition=self.task_definition,
            data_volume_name=DATA_VOLUME_NAME,
            vpc_subnets=vpc_subnets,
            security_group=security_group,
            # Public subnets without NAT: a task reaches ECR and the AWS APIs by its own address.
            assign_public_ip=True,
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            # Two PDS processes must never open the same data: at most one task, ever.
            desired_count=1,
            min_healthy_percent=0,
            max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            enable_execute_command=True,
            assign_public_ip=self.task.assign_public_ip,
            vpc_subnets=vpc_subnets,
            security_groups=[security_group],
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(
                    capacity_provider="FARGATE_SPOT" if task.spot else "FARGATE", weight=1
                )
            ],
            platform_version=ecs.FargatePlatformVersion.LATEST,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        # ECS reads the secret's keys when a task starts: they must exist by then.
        self.service.node.add_dependency(secrets.keys)


def mount(container: ecs.ContainerDefinition, volume: str, path: str, *, read_only: bool) -> None:
    """The task's volume `volume` at `path` in `container`."""
    container.add_mount_points(
        ecs.MountPoint(container_path=path, source_volume=volume, read_only=read_only)
    )
