"""Storage: the blob bucket, the backup bucket and the PLC rotation key.

What happens to them when the stack is deleted is decided by the mode: in `prod` they are
retained (losing the rotation key loses control of every account's DID; losing the backup
bucket loses the data), in `test` they are destroyed with the stack, objects included.

With `[recover]` set, a new stack adopts the three retained by a deleted one instead of
creating them (guides/DEPLOY.md, "Recover into a new stack"). CloudFormation then manages
neither the buckets' settings (versioning, lifecycle, encryption, public access block: they
stay as the old stack set them) nor the key. It does write each adopted bucket's policy, an
`AWS::S3::BucketPolicy` on the bucket name that replaces the retained one (a bucket has one
policy), with the same statements a created bucket gets, naming the new stack's roles. The
key policy cannot be written by this stack: the stack outputs it (`RotationKeyPolicy`) and
the operator puts it on the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.compliance import acknowledge, skip_checkov
from pds_aws.pipeline.stage_configs import production_steps_role_arn

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
        self._adopted_policies: dict[str, s3.BucketPolicy] = {}
        self.adopted = config.recover.enabled
        self.blob_bucket: s3.IBucket
        self.backup_bucket: s3.IBucket
        self.rotation_key: kms.IKey
        self.rotation_key_policy = iam.PolicyDocument(statements=[_rotation_key_admin()])
        if self.adopted:
            self._adopt(config, s3_endpoint)
        else:
            self._create(config, s3_endpoint)

    def _adopt(self, config: Config, s3_endpoint: ec2.IGatewayVpcEndpoint) -> None:
        """Import the retained buckets and key; write the buckets' policies anew."""
        recover = config.recover
        self.blob_bucket = s3.Bucket.from_bucket_name(self, "BlobBucket", recover.blob_bucket)
        self.backup_bucket = s3.Bucket.from_bucket_name(self, "BackupBucket", recover.backup_bucket)
        for construct_id, bucket in (
            ("BlobBucketPolicy", self.blob_bucket),
            ("BackupBucketPolicy", self.backup_bucket),
        ):
            # Retained whatever the mode: the bucket outlives this stack, and must not be left
            # without its deny statements when the stack goes.
            bucket_policy = s3.BucketPolicy(
                self, construct_id, bucket=bucket, removal_policy=RemovalPolicy.RETAIN
            )
            self._adopted_policies[bucket.bucket_name] = bucket_policy
            for statement in _tls_statements(bucket):
                bucket_policy.document.add_statements(statement)
            if config.is_prod:
                bucket_policy.document.add_statements(_endpoint_statement(bucket, s3_endpoint))
        self.rotation_key = kms.Key.from_key_arn(self, "PlcRotationKey", recover.rotation_key_arn)

    def _create(self, config: Config, s3_endpoint: ec2.IGatewayVpcEndpoint) -> None:
        blob_bucket = self._bucket("BlobBucket", config, versioned=False)
        backup_bucket = self._bucket("BackupBucket", config, versioned=True)
        self._create_buckets(config, s3_endpoint, blob_bucket, backup_bucket)
        self.blob_bucket = blob_bucket
        self.backup_bucket = backup_bucket

        # An explicit key policy replaces CDK's default, which gives the account kms:* and so
        # lets IAM policies grant Sign; `allow_signing` adds the one principal that may sign.
        self.rotation_key = kms.Key(
            self,
            "PlcRotationKey",
            description=f"PLC rotation key of the PDS at {config.pds.domain}",
            key_spec=kms.KeySpec.ECC_SECG_P256K1,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=removal_policy(config),
            pending_window=Duration.days(30),
            policy=iam.PolicyDocument(statements=[_rotation_key_admin()]),
        )

    def _create_buckets(
        self,
        config: Config,
        s3_endpoint: ec2.IGatewayVpcEndpoint,
        blob_bucket: s3.Bucket,
        backup_bucket: s3.Bucket,
    ) -> None:
        """Lifecycle rules, nag and checkov notes, and the policies of created buckets."""
        policy = removal_policy(config)
        backup_bucket.add_lifecycle_rule(
            id="expire-old-versions",
            noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_RETENTION_DAYS),
            abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
            expired_object_delete_marker=True,
        )
        blob_bucket.add_lifecycle_rule(
            id="abort-incomplete-uploads",
            abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
        )
        acknowledge(
            blob_bucket,
            {
                "NIST.800.53.R5-S3BucketVersioningEnabled": (
                    "Blobs are content-addressed and written once; the PDS deletes a blob "
                    "only when no record references it, so old versions would only cost storage."
                ),
            },
        )
        skip_checkov(
            blob_bucket,
            {"CKV_AWS_21": "blobs are content-addressed and written once; versions add nothing"},
        )
        for bucket in (blob_bucket, backup_bucket):
            acknowledge(
                bucket,
                {
                    "AwsSolutions-S1": (
                        "No server access logs: only the PDS task touches the bucket (through "
                        "the VPC endpoint in prod); its requests are in the PDS and CloudTrail "
                        "logs."
                    ),
                    "NIST.800.53.R5-S3BucketLoggingEnabled": (
                        "Same as AwsSolutions-S1: access is by the task role only."
                    ),
                    "NIST.800.53.R5-S3BucketReplicationEnabled": (
                        "A single-region personal server: cross-region replication would "
                        "double storage cost; the backup bucket is versioned and retained in prod."
                    ),
                    "NIST.800.53.R5-S3DefaultEncryptionKMS": (
                        "Encrypted with S3-managed keys (SSE-S3); a customer KMS key would add "
                        "a request charge to every blob and backup object without a second reader "
                        "to keep out."
                    ),
                },
                checkov={
                    "CKV_AWS_18": "only the PDS task role uses the bucket; see AwsSolutions-S1"
                },
            )
        if config.is_prod:
            _only_through_endpoint(blob_bucket, s3_endpoint)
            # The delivery pipeline's upgrade step reads the backup from CodeBuild, outside
            # the VPC (which has no NAT for CodeBuild to run in): its role alone is exempt.
            pipeline_role = production_steps_role_arn(config)
            exempt = [pipeline_role] if pipeline_role else []
            _only_through_endpoint(backup_bucket, s3_endpoint, exempt_role_arns=exempt)
        for bucket in (blob_bucket, backup_bucket):
            # A retained bucket keeps its policy: after a destroy the bucket that holds every
            # account's signing key must not be left without its deny statements.
            assert bucket.policy is not None  # enforce_ssl writes one
            bucket.policy.apply_removal_policy(policy)

    def allow_signing(self, signer: iam.IRole) -> None:
        """The key policy lets `signer`, and no one else, sign and read the public key.

        An adopted key's policy is not this stack's to write: `rotation_key_policy` is the
        whole policy the operator puts on it after the deploy.
        """
        statement = iam.PolicyStatement(
            sid="OnlyThePdsSigns",
            principals=[signer],
            actions=list(ROTATION_KEY_USE_ACTIONS),
            resources=["*"],
        )
        self.rotation_key_policy.add_statements(statement)
        if not self.adopted:
            self.rotation_key.add_to_resource_policy(statement)

    def rotation_key_policy_json(self) -> str:
        """The adopted key's policy as `aws kms put-key-policy --policy` takes it."""
        return Stack.of(self).to_json_string(self.rotation_key_policy.to_json())

    def restrict_backup_reads(self, readers: Sequence[iam.IRole]) -> None:
        """Deny reading backup objects to every principal except `readers`, by role ARN."""
        self._add_to_policy(
            self.backup_bucket,
            iam.PolicyStatement(
                sid="OnlyThePdsRolesReadBackups",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(BACKUP_READ_ACTIONS),
                resources=[self.backup_bucket.arn_for_objects("*")],
                conditions={
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in readers]}
                },
            ),
        )

    def _add_to_policy(self, bucket: s3.IBucket, statement: iam.PolicyStatement) -> None:
        adopted = self._adopted_policies.get(bucket.bucket_name)
        if adopted is not None:
            adopted.document.add_statements(statement)
        else:
            bucket.add_to_resource_policy(statement)

    def _bucket(self, construct_id: str, config: Config, *, versioned: bool) -> s3.Bucket:
        return private_bucket(
            self,
            construct_id,
            versioned=versioned,
            removal=removal_policy(config),
            auto_delete_objects=not config.is_prod,
        )


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    versioned: bool,
    removal: RemovalPolicy,
    auto_delete_objects: bool = False,
    lifecycle_rules: Sequence[s3.LifecycleRule] | None = None,
) -> s3.Bucket:
    """Every bucket of the project: no public access, TLS 1.2 or later only, encrypted at
    rest, objects owned by the bucket owner (no ACLs)."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        lifecycle_rules=lifecycle_rules,
        removal_policy=removal,
        auto_delete_objects=auto_delete_objects,
    )


def _only_through_endpoint(
    bucket: s3.Bucket, endpoint: ec2.IGatewayVpcEndpoint, exempt_role_arns: Sequence[str] = ()
) -> None:
    """Refuse object reads and writes that do not come through the VPC's S3 endpoint."""
    bucket.add_to_resource_policy(_endpoint_statement(bucket, endpoint, exempt_role_arns))


def _endpoint_statement(
    bucket: s3.IBucket, endpoint: ec2.IGatewayVpcEndpoint, exempt_role_arns: Sequence[str] = ()
) -> iam.PolicyStatement:
    conditions: dict[str, Any] = {"StringNotEquals": {"aws:SourceVpce": endpoint.vpc_endpoint_id}}
    if exempt_role_arns:
        conditions["ArnNotEquals"] = {"aws:PrincipalArn": list(exempt_role_arns)}
    return iam.PolicyStatement(
        sid="OnlyThroughVpcEndpoint",
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(_DATA_ACTIONS),
        resources=[bucket.arn_for_objects("*")],
        conditions=conditions,
    )


def _tls_statements(bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    """What `enforce_ssl=True, minimum_tls_version=1.2` write on a created bucket."""
    resources = [bucket.bucket_arn, bucket.arn_for_objects("*")]
    return [
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=resources,
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        ),
        iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=resources,
            conditions={"NumericLessThan": {"s3:TlsVersion": 1.2}},
        ),
    ]


def _rotation_key_admin() -> iam.PolicyStatement:
    """What the account keeps on the rotation key (ROTATION_KEY_ADMIN_ACTIONS)."""
    return iam.PolicyStatement(
        sid="AccountAdministersTheKey",
        principals=[iam.AccountRootPrincipal()],
        actions=list(ROTATION_KEY_ADMIN_ACTIONS),
        resources=["*"],
    )
