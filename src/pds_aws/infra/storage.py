"""Storage: the blob bucket, the backup bucket and the PLC rotation key.

What happens to them when the stack is deleted is decided by the mode: in `prod` they are
retained (losing the rotation key loses control of every account's DID; losing the backup
bucket loses the data), in `test` they are destroyed with the stack, objects included.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import skip_checkov

# Old versions of backup objects (overwritten or deleted LTX and key files) are kept this long,
# so a bad restore or a bug can never erase history older than the window.
NONCURRENT_VERSION_RETENTION_DAYS = 30
INCOMPLETE_UPLOAD_DAYS = 7
# Object-level actions that must come through the VPC endpoint in prod.
_DATA_ACTIONS = ("s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:RestoreObject")
# What the account keeps on the rotation key: administration, never use. No kms:* (it would
# let any IAM policy with kms:Sign on "*" sign PLC operations), no kms:CreateGrant (a grant
# could give Sign), no Get* (it covers GetPublicKey). kms:PutKeyPolicy stays: a recovered
# stack must be able to rewrite the policy, and that change is itself in CloudTrail.
ROTATION_KEY_ADMIN_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:ListResourceTags",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListAliases",
    "kms:PutKeyPolicy",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:RevokeGrant",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
ROTATION_KEY_USE_ACTIONS = ("kms:Sign", "kms:GetPublicKey")
# Every way to read an object's content (GetObject, GetObjectVersion, GetObjectAttributes...).
BACKUP_READ_ACTIONS = ("s3:GetObject*",)


def removal_policy(config: Config) -> RemovalPolicy:
    """Data survives a stack deletion in prod and goes with it in test."""
    return RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY


class Storage(Construct):
    """Blob bucket, backup bucket, PLC rotation key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        s3_endpoint: ec2.IGatewayVpcEndpoint,
    ) -> None:
        super().__init__(scope, construct_id)
        policy = removal_policy(config)
        self.blob_bucket = self._bucket("BlobBucket", config, versioned=False)
        self.backup_bucket = self._bucket("BackupBucket", config, versioned=True)
        self.backup_bucket.add_lifecycle_rule(
            id="expire-old-versions",
            noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_RETENTION_DAYS),
            abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
            expired_object_delete_marker=True,
        )
        self.blob_bucket.add_lifecycle_rule(
            id="abort-incomplete-uploads",
            abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
        )
        Validations.of(self.blob_bucket).acknowledge(
            Acknowledgment(
                id="NIST.800.53.R5-S3BucketVersioningEnabled",
                reason="Blobs are content-addressed and written once; the PDS deletes a blob "
                "only when no record references it, so old versions would only cost storage.",
            ),
        )
        skip_checkov(
            self.blob_bucket,
            {"CKV_AWS_21": "blobs are content-addressed and written once; versions add nothing"},
        )
        for bucket in (self.blob_bucket, self.backup_bucket):
            skip_checkov(
                bucket,
                {"CKV_AWS_18": "only the PDS task role uses the bucket; see AwsSolutions-S1"},
            )
            Validations.of(bucket).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-S1",
                    reason="No server access logs: only the PDS task touches the bucket (through "
                    "the VPC endpoint in prod); its requests are in the PDS and CloudTrail logs.",
                ),
                Acknowledgment(
                    id="NIST.800.53.R5-S3BucketLoggingEnabled",
                    reason="Same as AwsSolutions-S1: access is by the task role only.",
                ),
                Acknowledgment(
                    id="NIST.800.53.R5-S3BucketReplicationEnabled",
                    reason="A single-region personal server: cross-region replication would "
                    "double storage cost; the backup bucket is versioned and retained in prod.",
                ),
                Acknowledgment(
                    id="NIST.800.53.R5-S3DefaultEncryptionKMS",
                    reason="Encrypted with S3-managed keys (SSE-S3); a customer KMS key would add "
                    "a request charge to every blob and backup object without a second reader "
                    "to keep out.",
                ),
            )
        if config.is_prod:
            for bucket in (self.blob_bucket, self.backup_bucket):
                _only_through_endpoint(bucket, s3_endpoint)
        for bucket in (self.blob_bucket, self.backup_bucket):
            # A retained bucket keeps its policy: after a destroy the bucket that holds every
            # account's signing key must not be left without its deny statements.
            assert bucket.policy is not None  # enforce_ssl writes one
            bucket.policy.apply_removal_policy(policy)

        # An explicit key policy replaces CDK's default, which gives the account kms:* and so
        # lets IAM policies grant Sign; `allow_signing` adds the one principal that may sign.
        self.rotation_key = kms.Key(
            self,
            "PlcRotationKey",
            description=f"PLC rotation key of the PDS at {config.pds.domain}",
            key_spec=kms.KeySpec.ECC_SECG_P256K1,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=policy,
            pending_window=Duration.days(30),
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersTheKey",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(ROTATION_KEY_ADMIN_ACTIONS),
                        resources=["*"],
                    )
                ]
            ),
        )

    def allow_signing(self, signer: iam.IRole) -> None:
        """The key policy lets `signer`, and no one else, sign and read the public key."""
        self.rotation_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePdsSigns",
                principals=[signer],
                actions=list(ROTATION_KEY_USE_ACTIONS),
                resources=["*"],
            )
        )

    def restrict_backup_reads(self, readers: Sequence[iam.IRole]) -> None:
        """Deny reading backup objects to every principal except `readers`, by role ARN."""
        self.backup_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePdsRolesReadBackups",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(BACKUP_READ_ACTIONS),
                resources=[self.backup_bucket.arn_for_objects("*")],
                conditions={
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in readers]}
                },
            )
        )

    def _bucket(self, construct_id: str, config: Config, *, versioned: bool) -> s3.Bucket:
        destroy = not config.is_prod
        return s3.Bucket(
            self,
            construct_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            removal_policy=removal_policy(config),
            auto_delete_objects=destroy,
        )


def _only_through_endpoint(bucket: s3.Bucket, endpoint: ec2.IGatewayVpcEndpoint) -> None:
    """Refuse object reads and writes that do not come through the VPC's S3 endpoint."""
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyThroughVpcEndpoint",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(_DATA_ACTIONS),
            resources=[bucket.arn_for_objects("*")],
            conditions={"StringNotEquals": {"aws:SourceVpce": endpoint.vpc_endpoint_id}},
        )
    )
