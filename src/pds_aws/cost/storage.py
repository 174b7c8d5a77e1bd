"""Pricing of what the stack stores: S3 buckets (blobs, backups), log groups, ECR images,
KMS keys and secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pds_aws.cost.context import PricingContext
from pds_aws.cost.results import Charge, Kind
from pds_aws.cost.template import (
    DAYS_PER_MONTH,
    display_name,
    refs,
)

# Steady-state log storage when a log group never expires: a year of ingestion.
UNBOUNDED_LOG_RETENTION_DAYS = 365


def price_kms_key(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    props = res.get("Properties", {})
    spec = str(props.get("KeySpec", "SYMMETRIC_DEFAULT"))
    signs = props.get("KeyUsage") == "SIGN_VERIFY" or spec.startswith(("ECC", "RSA"))
    _key_charges(ctx, spec, signs=signs, ids=(logical_id,))


def _key_charges(ctx: PricingContext, spec: str, *, signs: bool, ids: tuple[str, ...]) -> None:
    ctx.add(Charge("KMS keys", "kms_key_month", 1, Kind.FIXED, ids))
    if signs:
        ctx.add(
            Charge(
                f"KMS sign requests ({spec}, PLC operations)",
                "kms_asymmetric_request",
                ctx.usage.plc_signatures_per_month,
                Kind.VARIABLE,
                ids,
            )
        )


def price_adopted_storage(ctx: PricingContext) -> None:
    """`[recover]`: the adopted buckets and rotation key are not in the template, and cost what
    they cost under the old stack; priced as if the stack had created them."""
    recover = ctx.config.recover
    if not recover.enabled:
        return
    _bucket_charges(ctx, "blob", (f"recover.blob_bucket {recover.blob_bucket}",))
    _bucket_charges(ctx, "backup", (f"recover.backup_bucket {recover.backup_bucket}",))
    _key_charges(
        ctx,
        "ECC_SECG_P256K1",
        signs=True,
        ids=(f"recover.rotation_key_arn {recover.rotation_key_arn}",),
    )


def price_secret(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(Charge("Secrets Manager secrets", "secret_month", 1, Kind.FIXED, (logical_id,)))


def price_log_groups(ctx: PricingContext) -> None:
    groups = ctx.of_type("AWS::Logs::LogGroup")
    if not groups:
        return
    ids = tuple(i for i, _ in groups)
    retention = [g.get("Properties", {}).get("RetentionInDays") for _, g in groups]
    days = max(int(r) if r else UNBOUNDED_LOG_RETENTION_DAYS for r in retention)
    ingest = ctx.usage.log_ingestion_gb_per_month
    note = "" if all(retention) else "a log group never expires; a year of logs assumed"
    ctx.add(
        Charge(
            f"CloudWatch Logs ingestion ({len(ids)} log groups)",
            "cloudwatch_logs_ingest_gb",
            ingest,
            Kind.VARIABLE,
            ids,
            "cloudwatch_logs_gb",
        ),
        Charge(
            f"CloudWatch Logs storage ({days} days kept)",
            "cloudwatch_logs_storage_gb_month",
            ingest * days / DAYS_PER_MONTH,
            Kind.VARIABLE,
            ids,
            "cloudwatch_logs_gb",
            note,
        ),
    )
    protected = tuple(i for i, g in groups if g.get("Properties", {}).get("DataProtectionPolicy"))
    if protected:
        # Every event ingested into a protected group is scanned; the PDS's request log is
        # most of the stack's log volume, so all of it is counted (an upper bound).
        ctx.add(
            Charge(
                f"CloudWatch Logs data protection ({len(protected)} log group)",
                "cloudwatch_logs_data_protection_gb",
                ingest,
                Kind.VARIABLE,
                protected,
                note="masks the rate-limit bypass key in the PDS request log; all ingestion "
                "counted as scanned",
            )
        )


def bucket_roles(ctx: PricingContext) -> dict[str, str]:
    """Which bucket holds blobs and which backups, read from the task definitions' env."""
    roles: dict[str, str] = {}
    for _, task_definition in ctx.of_type("AWS::ECS::TaskDefinition"):
        for container in task_definition.get("Properties", {}).get("ContainerDefinitions", []):
            for env in container.get("Environment", []):
                role = {"PDS_BLOBSTORE_S3_BUCKET": "blob", "BACKUP_URL": "backup"}.get(env["Name"])
                if role:
                    for ref in refs(env.get("Value")):
                        roles.setdefault(ref, role)
    return roles


def price_buckets(ctx: PricingContext) -> None:
    roles = bucket_roles(ctx)
    for logical_id, _ in ctx.of_type("AWS::S3::Bucket"):
        _bucket_charges(ctx, roles.get(logical_id, "other"), (logical_id,))


def _bucket_charges(ctx: PricingContext, role: str, ids: tuple[str, ...]) -> None:
    usage = ctx.usage
    if role == "blob":
        ctx.add(
            Charge(
                "S3 blob storage",
                "s3_standard_gb_month",
                usage.blob_storage_gb,
                Kind.VARIABLE,
                ids,
            ),
            Charge(
                "S3 blob uploads",
                "s3_write_request",
                usage.blob_write_requests_per_month,
                Kind.VARIABLE,
                ids,
            ),
            Charge(
                "S3 blob reads",
                "s3_read_request",
                usage.blob_read_requests_per_month,
                Kind.VARIABLE,
                ids,
            ),
        )
    elif role == "backup":
        idle = ctx.backup_idle
        ctx.add(
            Charge(
                "S3 backup storage",
                "s3_standard_gb_month",
                usage.backup_storage_gb,
                Kind.VARIABLE,
                ids,
            ),
            Charge(
                f"S3 backup idle requests ({idle.requests_per_hour:,.4g}/hour)",
                "s3_write_request",
                idle.requests_per_hour * ctx.hours,
                Kind.FIXED,
                ids,
                note=idle.source,
            ),
            Charge(
                "S3 backup uploads while accounts write",
                "s3_write_request",
                usage.backup_write_requests_per_month,
                Kind.VARIABLE,
                ids,
            ),
        )
    else:
        ctx.add(
            Charge(
                f"S3 bucket {display_name(ids[0])} storage",
                "s3_standard_gb_month",
                usage.other_bucket_storage_gb,
                Kind.VARIABLE,
                ids,
            )
        )


def price_ecr_repository(ctx: PricingContext, logical_id: str, res: Mapping[str, Any]) -> None:
    ctx.add(
        Charge(
            "ECR image storage",
            "ecr_gb_month",
            ctx.usage.container_image_gb,
            Kind.FIXED,
            (logical_id,),
        )
    )
