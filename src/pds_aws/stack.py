"""The PDS stack: reads like the architecture diagram in DESIGN.md.

Components are created with typed, keyword-only arguments; the wiring between them (grants,
start order, alarm actions) is done here, in one visible place.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack, Tags
from constructs import Construct

from pds_aws.config import Config
from pds_aws.monitoring import Monitoring
from pds_aws.network import AZ_COUNT, Network
from pds_aws.service import PdsSecrets, PdsService
from pds_aws.storage import Storage

PROJECT_TAG = "pds-aws"


class PdsStack(Stack):
    """One Bluesky PDS: network, edge, storage, e-mail, service, backup, monitoring."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        region = config.aws.region

        network = Network(self, "Network")
        storage = Storage(self, "Storage", config=config, s3_endpoint=network.s3_endpoint)
        monitoring = Monitoring(self, "Monitoring", config=config)
        secrets = PdsSecrets(self, "Secrets", config=config)
        service = PdsService(
            self,
            "Pds",
            config=config,
            cluster=network.cluster,
            vpc=network.vpc,
            vpc_subnets=network.public_subnets,
            blob_bucket=storage.blob_bucket,
            rotation_key=storage.rotation_key,
            secrets=secrets,
            smtp_url_secret=None,
            log_group=monitoring.pds_log_group,
            region=region,
        )

        # Grants: the PDS reads and writes blobs, and only signs with the rotation key.
        task_role = service.task_definition.task_role
        storage.blob_bucket.grant_read_write(task_role)
        storage.blob_bucket.grant_delete(task_role)
        storage.rotation_key.grant(task_role, "kms:Sign", "kms:GetPublicKey")

        self.network = network
        self.storage = storage
        self.monitoring = monitoring
        self.secrets = secrets
        self.service = service

        CfnOutput(self, "AdminPasswordSecretArn", value=secrets.admin_password.secret_arn)
        CfnOutput(self, "BlobBucketName", value=storage.blob_bucket.bucket_name)
        CfnOutput(self, "BackupBucketName", value=storage.backup_bucket.bucket_name)
        CfnOutput(self, "ClusterName", value=network.cluster.cluster_name)
        CfnOutput(self, "ServiceName", value=service.service.service_name)
        CfnOutput(self, "Url", value=f"https://{config.pds.domain}")

        Tags.of(self).add("project", PROJECT_TAG)
        Tags.of(self).add("pds-domain", config.pds.domain)
        Tags.of(self).add("pds-mode", config.aws.mode.value)

    @property
    def availability_zones(self) -> list[str]:
        # Resolved by CloudFormation at deploy time: synth needs no credentials and no
        # context lookups, even with an explicit account and region.
        return [Fn.select(i, Fn.get_azs()) for i in range(AZ_COUNT)]
