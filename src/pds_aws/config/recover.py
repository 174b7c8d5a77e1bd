"""[recover]: the resources a deleted `prod` stack retained, adopted by a new stack."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import model_validator

from pds_aws.config.values import Section, arn_part, whole_match

# S3 bucket naming rules for general purpose buckets: 3-63 characters, lower-case letters,
# digits, dots and hyphens, starting and ending with a letter or digit, not an IP address.
_BUCKET_RE = re.compile(
    r"(?!xn--|sthree-|amzn-s3-demo-)"  # reserved prefixes
    r"(?!.*\.\.)"  # no two dots in a row
    r"(?!\d+\.\d+\.\d+\.\d+\Z)"  # not an IP address
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
)
# A KMS key ARN (not an alias: an alias can be moved to another key).
_KMS_KEY_ARN_RE = re.compile(
    r"arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/"
    r"(?P<key_id>(mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
_KEY_ARN_EXAMPLE = (
    "example: 'arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' "
    "(the retained key's ARN: KMS console -> Customer managed keys)"
)
# A bucket the deleted stack retained, by name.
_RetainedBucket = Annotated[
    str,
    whole_match(
        _BUCKET_RE,
        "is not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-'); copy "
        "the retained bucket's name from the S3 console or the old stack's outputs "
        "(BackupBucketName, BlobBucketName), example: "
        "'blueskypds-storagebackupbucket1a2b3c4d-abcdef123456'",
        empty_ok=True,
    ),
]


class RecoverSettings(Section):
    """Resources retained by a deleted `prod` stack, adopted by a new stack instead of created.

    All three or none: the backup holds the accounts, the blob bucket their images, and the
    rotation key is the key their DIDs list.
    """

    backup_bucket: _RetainedBucket = ""
    blob_bucket: _RetainedBucket = ""
    rotation_key_arn: Annotated[
        str,
        whole_match(_KMS_KEY_ARN_RE, f"is not a KMS key ARN; {_KEY_ARN_EXAMPLE}", empty_ok=True),
    ] = ""

    @model_validator(mode="after")
    def _all_or_none(self) -> RecoverSettings:
        values = {
            "backup_bucket": self.backup_bucket,
            "blob_bucket": self.blob_bucket,
            "rotation_key_arn": self.rotation_key_arn,
        }
        missing = [key for key, value in values.items() if not value]
        if missing and len(missing) < len(values):
            raise ValueError(
                f"sets {', '.join(k for k in values if k not in missing)} but not "
                f"{', '.join(missing)}; a recovery adopts all three retained resources (the "
                f"backup, the blobs, the rotation key the DIDs list), or remove [recover]"
            )
        if self.backup_bucket and self.backup_bucket == self.blob_bucket:
            raise ValueError(
                "backup_bucket and blob_bucket name the same bucket; they are two buckets, "
                "see the old stack's outputs BackupBucketName and BlobBucketName"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.backup_bucket)

    @property
    def rotation_key_region(self) -> str:
        return arn_part(_KMS_KEY_ARN_RE, self.rotation_key_arn, "region")

    @property
    def rotation_key_account(self) -> str:
        return arn_part(_KMS_KEY_ARN_RE, self.rotation_key_arn, "account")
