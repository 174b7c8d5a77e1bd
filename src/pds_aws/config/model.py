"""The deployment config: the only reader of the TOML file.

Every part of pds-aws (the CDK app, the local runtime, the CLI, the cost model) gets its
settings from `load_config`, validated once here. A wrong value stops everything with a
message naming the file, the key, the bad value and a valid example.
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from pds_aws.errors import ConfigError as ConfigError  # re-exported: raised by load_config
from pds_aws.names import EXAMPLE_CONFIG_FILE
from pds_aws.pipeline.settings import PipelineSettings
from pds_aws.versions import PDS_IMAGE_REPOSITORY, PDS_IMAGE_TAG

# Fargate's valid task sizes: CPU units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# Commercial regions where Fargate, SES and KMS secp256k1 keys are all offered.
AWS_REGIONS: frozenset[str] = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "ca-west-1",
        "sa-east-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "ap-south-1",
        "ap-south-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-east-1",
        "me-south-1",
        "me-central-1",
        "il-central-1",
        "af-south-1",
    }
)

# Every pattern is used with fullmatch: `re.match(...$)` would accept a trailing newline.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"(?=.{{1,253}}\Z)({_LABEL}\.)+[a-z]{{2,63}}")
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([a-z0-9-]+\.)+[a-z]{2,63}")
_ZONE_ID_RE = re.compile(r"Z[A-Z0-9]{4,31}")
_ACCOUNT_RE = re.compile(r"\d{12}")
# OCI distribution spec: a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}; a sha256 digest is 64 hex.
_IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_DID_RE = re.compile(r"did:(plc:[a-z2-7]{24}|web:[a-z0-9.-]+(%3[Aa]\d+)?)")
# ACM: the first domain name of a certificate (its CN) is at most 64 characters.
ACM_DOMAIN_MAX_LENGTH = 64


class Mode(StrEnum):
    TEST = "test"  # everything is deleted with the stack
    PROD = "prod"  # data (buckets, rotation key, secrets, logs) is retained


class Architecture(StrEnum):
    ARM64 = "arm64"
    X86_64 = "x86_64"


class EdgeKind(StrEnum):
    ALB = "alb"  # an Application Load Balancer with ACM certificates (the default)
    DIRECT = "direct"  # no load balancer: the task's public address and a TLS proxy in the task


def _whole_match(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """A string setting that the whole of `pattern` must match; else the error `problem`."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


_ZoneId = Annotated[
    str,
    _whole_match(
        _ZONE_ID_RE,
        "is not a Route 53 hosted zone id; copy it from the Route 53 console, "
        "example: 'Z0123456789ABCDEFGHIJ'",
    ),
]
_AccountId = Annotated[
    str, _whole_match(_ACCOUNT_RE, "must be a 12-digit AWS account id, example: '123456789012'")
]
_Did = Annotated[
    str,
    _whole_match(
        _DID_RE, "is not a did:plc or did:web identifier; example: 'did:web:api.bsky.app'"
    ),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_email(value: str, *, entry: bool = False) -> str:
    if not _EMAIL_RE.fullmatch(value):
        what = f"entry {value!r} is" if entry else "is"
        raise ValueError(f"{what} not an e-mail address; example: 'ops@example.com'")
    return value


def _check_https_url(url: str) -> str:
    """A service URL: https, a DNS host (optionally a port), nothing else."""
    example = "example: 'https://bsky.network'"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        # urlsplit silently drops tabs and newlines; a URL never contains them.
        raise ValueError(f"{url!r} contains whitespace or control characters; {example}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a valid URL ({exc}); {example}") from None
    if parts.scheme != "https":
        raise ValueError(f"{url!r} must be an https:// URL; {example}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url!r} must not contain a user name or password; {example}")
    host = parts.hostname or ""
    if not _DOMAIN_RE.fullmatch(host):
        raise ValueError(f"{url!r} has no valid DNS host name; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(
            f"{url!r} must be the service's base URL without path, query or fragment; {example}"
        )
    del port  # parsed only to reject a bad one
    return url


class PdsSettings(_Section):
    domain: str
    hosted_zone_id: _ZoneId
    hosted_zone_name: str
    image_tag: str = PDS_IMAGE_TAG
    invite_required: bool = True
    # Handle suffixes users may register under; default: '.<domain>'.
    handle_domains: tuple[str, ...] = ()
    blob_upload_limit_bytes: Annotated[int, Field(ge=1_000_000, le=1_000_000_000)] = 104_857_600
    email_from: str = ""
    contact_email: str = ""
    plc_url: str = "https://plc.directory"
    app_view_url: str = "https://api.bsky.app"
    app_view_did: _Did = "did:web:api.bsky.app"
    report_service_url: str = "https://mod.bsky.app"
    report_service_did: _Did = "did:plc:ar7c4by46qjdydhdevvrndac"
    crawlers: tuple[str, ...] = ("https://bsky.network",)
    log_level: Literal["trace", "debug", "info", "warn", "error", "fatal"] = "info"

    @field_validator("domain", "hosted_zone_name", mode="before")
    @classmethod
    def _domain(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.removesuffix(".")
            if not _DOMAIN_RE.fullmatch(value):
                raise ValueError("is not a valid lower-case DNS name; example: 'pds.example.com'")
        return value

    @field_validator("domain")
    @classmethod
    def _certificate_domain(cls, value: str) -> str:
        if len(value) > ACM_DOMAIN_MAX_LENGTH:
            raise ValueError(
                f"is {len(value)} characters long; ACM certificates take at most "
                f"{ACM_DOMAIN_MAX_LENGTH} for the domain name: use a shorter one, "
                f"example: 'pds.example.com'"
            )
        return value

    @field_validator("image_tag")
    @classmethod
    def _image_tag(cls, value: str) -> str:
        tag, _, digest = value.partition("@")
        example = f"'{PDS_IMAGE_TAG}', or pinned by digest '{PDS_IMAGE_TAG}@sha256:<64 hex>'"
        if tag == "latest" or not _IMAGE_TAG_RE.fullmatch(tag):
            raise ValueError(f"must be a pinned image tag such as {example}")
        if "@" in value and not _IMAGE_DIGEST_RE.fullmatch(digest):
            raise ValueError(
                f"digest {digest!r} is not 'sha256:' + 64 lower-case hex digits; find the "
                f"digest of a tag as guides/DEPLOY.md says; example: {example}"
            )
        return value

    @field_validator("email_from", "contact_email")
    @classmethod
    def _optional_email(cls, value: str) -> str:
        return _check_email(value) if value else value

    @field_validator("handle_domains")
    @classmethod
    def _handle_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for suffix in value:
            if not suffix.startswith(".") or not _DOMAIN_RE.fullmatch(suffix[1:]):
                raise ValueError(
                    f"entry {suffix!r} must be '.' + a domain, example: '.example.com'"
                )
        return value

    @field_validator("crawlers", "plc_url", "app_view_url", "report_service_url")
    @classmethod
    def _https(cls, value: Any) -> Any:
        for url in (value,) if isinstance(value, str) else value:
            _check_https_url(url)
        return value

    @model_validator(mode="after")
    def _zone_contains_domain(self) -> PdsSettings:
        if self.domain != self.hosted_zone_name and not self.domain.endswith(
            "." + self.hosted_zone_name
        ):
            raise ValueError(
                f"hosted_zone_name {self.hosted_zone_name!r} is not a suffix of domain "
                f"{self.domain!r}; the zone must contain the PDS domain, example: domain = "
                f"'pds.example.com' with hosted_zone_name = 'example.com'"
            )
        return self

    @property
    def image_version_tag(self) -> str:
        """The image tag alone (what versions.PDS_PACKAGE_IN_IMAGE is keyed by)."""
        return self.image_tag.partition("@")[0]

    @property
    def image_digest(self) -> str | None:
        """`sha256:<hex>` when the image is pinned by digest."""
        return self.image_tag.partition("@")[2] or None

    @property
    def image_reference(self) -> str:
        """The official image as a registry reference: `repo@sha256:...` when pinned by
        digest (the tag is then only a label; ECS and Docker take `repo@digest`), else
        `repo:tag`. What the stack pulls or copies into its own ECR repository."""
        if self.image_digest:
            return f"{PDS_IMAGE_REPOSITORY}@{self.image_digest}"
        return f"{PDS_IMAGE_REPOSITORY}:{self.image_version_tag}"

    @property
    def service_handle_domains(self) -> tuple[str, ...]:
        return self.handle_domains or ("." + self.domain,)

    @property
    def email_from_address(self) -> str:
        return self.email_from or f"noreply@{self.domain}"


class AwsSettings(_Section):
    account: _AccountId
    region: str
    mode: Mode = Mode.TEST
    stack_name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")] = "BlueskyPds"

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in AWS_REGIONS:
            raise ValueError(
                "is not an AWS region with Fargate, SES and secp256k1 KMS keys; "
                "example: 'us-east-2'"
            )
        return value


FARGATE_FREE_EPHEMERAL_GIB = 20


class TaskSettings(_Section):
    # 0.5 vCPU / 1 GiB, chosen from the task's measured memory and CPU with 20 accounts under
    # load (BENCHMARKS.md, "Task size"); the cost of other sizes is in guides/COST.md.
    cpu: int = 512
    memory: int = 1024
    architecture: Architecture = Architecture.ARM64
    # 20 GiB is what Fargate gives a task without charge when the task definition names no
    # size (CloudFormation takes 21..200 when it does, billed above 20).
    ephemeral_storage_gib: Annotated[int, Field(ge=FARGATE_FREE_EPHEMERAL_GIB, le=200)] = (
        FARGATE_FREE_EPHEMERAL_GIB
    )
    spot: bool = False

    @property
    def ephemeral_storage_setting(self) -> int | None:
        """The task definition's EphemeralStorage size, None for Fargate's free default."""
        gib = self.ephemeral_storage_gib
        return None if gib == FARGATE_FREE_EPHEMERAL_GIB else gib

    @model_validator(mode="after")
    def _fargate_size(self) -> TaskSettings:
        if self.cpu not in FARGATE_SIZES:
            raise ValueError(
                f"cpu = {self.cpu} is not a Fargate CPU value; use one of "
                f"{sorted(FARGATE_SIZES)}, example: cpu = 1024"
            )
        allowed = FARGATE_SIZES[self.cpu]
        if self.memory not in allowed:
            raise ValueError(
                f"memory = {self.memory} is not valid with cpu = {self.cpu}; Fargate allows "
                f"{allowed[0]}..{allowed[-1]} MiB in steps of {allowed[1] - allowed[0]}, "
                f"example: cpu = {self.cpu}, memory = {allowed[0]}"
            )
        return self


# A watchdog run may take up to its 5-minute timeout: runs must not overlap.
RELAY_CHECK_MIN_MINUTES = 5


class MonitoringSettings(_Section):
    alarm_emails: tuple[str, ...] = ()
    # ECS Container Insights, billed as custom metrics (guides/COST.md); the alarms and the
    # dashboard use the free AWS/ECS and ALB metrics, so it is off unless wanted.
    container_insights: bool = False
    log_retention_days: Literal[
        1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653
    ] = 30
    # Minutes between two runs of the relay watchdog (host and account status at each crawler,
    # a crawl requested again when idle or unknown); 0 turns it off.
    relay_check: Annotated[int, Field(ge=0, le=1440)] = 15

    @field_validator("relay_check")
    @classmethod
    def _relay_check(cls, value: int) -> int:
        if 0 < value < RELAY_CHECK_MIN_MINUTES:
            raise ValueError(
                f"runs at most every {RELAY_CHECK_MIN_MINUTES} minutes (one run may take "
                f"that long); example: relay_check = 15, or 0 to turn the watchdog off"
            )
        return value

    @field_validator("alarm_emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            _check_email(email, entry=True)
        return value


_SCHEDULE_RE = re.compile(
    r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\)"
)


class EdgeSettings(_Section):
    """How the internet reaches the PDS (guides/DEPLOY.md, "Edge kinds")."""

    kind: EdgeKind = EdgeKind.ALB
    # direct only: TTL of the A records of the domain and *.domain that follow the task's
    # address; it is part of the failover time (guides/COST.md, "Direct shape").
    dns_ttl_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    # direct only: the ACME directory certbot obtains the wildcard certificate from.
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    # direct only: the ACME account's contact address; empty uses [pds] contact_email, or none.
    acme_email: str = ""

    @field_validator("acme_directory")
    @classmethod
    def _acme_https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(
                "must be an https:// ACME directory URL, example: "
                "'https://acme-staging-v02.api.letsencrypt.org/directory'"
            )
        return value

    @field_validator("acme_email")
    @classmethod
    def _acme_email(cls, value: str) -> str:
        return _check_email(value) if value else value


_Schedule = Annotated[
    str,
    _whole_match(
        _SCHEDULE_RE,
        "is not an EventBridge schedule expression; example: 'cron(0 4 ? * SUN *)' "
        "(Sundays 04:00 UTC) or 'rate(7 days)'",
    ),
]


class BackupSettings(_Section):
    # EventBridge schedule of the restore drill (a one-off Fargate task); UTC.
    drill_schedule: _Schedule = "cron(0 4 ? * SUN *)"
    # How far back `pds-aws backup restore --at` reaches. Granularity: the exact sync (about a
    # second) over the last minutes, then one point per Litestream L1 compaction (every 6 h).
    # Snapshots (daily) are kept this long plus a day.
    history_days: Annotated[int, Field(ge=1, le=3650)] = 30


class RelaySettings(_Section):
    # Accounts a relay takes from one host before the operator asks for more (bsky.network's
    # default is 100). Relays do not report it: raise this after a raise is granted.
    account_limit: Annotated[int, Field(ge=1)] = 100
    # A commit the relay still lacks after this many minutes is an alarm.
    lag_threshold_minutes: Annotated[int, Field(ge=1, le=1440)] = 10


# S3 bucket naming rules for general purpose buckets: 3-63 characters, lower-case letters,
# digits, dots and hyphens, starting and ending with a letter or digit, not an IP address.
_BUCKET_RE = re.compile(r"(?!xn--|sthree-|amzn-s3-demo-)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")
# A KMS key ARN (not an alias: an alias can be moved to another key).
_KMS_KEY_ARN_RE = re.compile(
    r"arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/"
    r"(?P<key_id>(mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
_KEY_ARN_EXAMPLE = (
    "example: 'arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' "
    "(the retained key's ARN: KMS console -> Customer managed keys)"
)


class RecoverSettings(_Section):
    """Resources retained by a deleted `prod` stack, adopted by a new stack instead of created.

    All three or none: the backup holds the accounts, the blob bucket their images, and the
    rotation key is the key their DIDs list.
    """

    backup_bucket: str = ""
    blob_bucket: str = ""
    rotation_key_arn: str = ""

    @field_validator("backup_bucket", "blob_bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value and (not _BUCKET_RE.fullmatch(value) or ".." in value or _IP_RE.fullmatch(value)):
            raise ValueError(
                "is not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-'); copy "
                "the retained bucket's name from the S3 console or the old stack's outputs "
                "(BackupBucketName, BlobBucketName), example: "
                "'blueskypds-storagebackupbucket1a2b3c4d-abcdef123456'"
            )
        return value

    @field_validator("rotation_key_arn")
    @classmethod
    def _key_arn(cls, value: str) -> str:
        if value and not _KMS_KEY_ARN_RE.fullmatch(value):
            raise ValueError(f"is not a KMS key ARN; {_KEY_ARN_EXAMPLE}")
        return value

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
        match = _KMS_KEY_ARN_RE.fullmatch(self.rotation_key_arn)
        return match["region"] if match else ""

    @property
    def rotation_key_account(self) -> str:
        match = _KMS_KEY_ARN_RE.fullmatch(self.rotation_key_arn)
        return match["account"] if match else ""


class CostSettings(_Section):
    """Usage assumptions of the cost estimate (`pds-aws cost`); they change no deployed resource.

    Defaults describe a PDS of 1-20 active accounts.
    """

    # Always-free allowances (CloudWatch, data transfer, Lambda, CodeBuild) go to this stack.
    use_free_tier: bool = True
    # Accounts on the PDS; scales per-database costs (the backup sidecar's idle requests).
    accounts: Annotated[int, Field(ge=1)] = 20
    blob_storage_gb: Annotated[float, Field(ge=0)] = 5.0
    blob_write_requests_per_month: Annotated[int, Field(ge=0)] = 20_000
    blob_read_requests_per_month: Annotated[int, Field(ge=0)] = 200_000
    # Litestream LTX files, key files and their old versions kept by the lifecycle rule.
    backup_storage_gb: Annotated[float, Field(ge=0)] = 2.0
    # Uploads while accounts write (one LTX file per database per sync while it changes).
    backup_write_requests_per_month: Annotated[int, Field(ge=0)] = 100_000
    # Used only when BENCHMARKS.md holds no measured "idle S3 requests per hour".
    backup_idle_requests_per_hour: Annotated[float, Field(ge=0)] = 60.0
    # Any other bucket (e.g. access logs).
    other_bucket_storage_gb: Annotated[float, Field(ge=0)] = 1.0
    emails_per_month: Annotated[int, Field(ge=0)] = 200
    log_ingestion_gb_per_month: Annotated[float, Field(ge=0)] = 1.0
    # Average Load Balancer Capacity Units; a small PDS uses a few hundredths of one.
    alb_lcu: Annotated[float, Field(ge=0)] = 0.05
    data_transfer_out_gb_per_month: Annotated[float, Field(ge=0)] = 20.0
    # PLC operations signed by the KMS rotation key (account creation, handle changes).
    plc_signatures_per_month: Annotated[int, Field(ge=0)] = 100
    alarm_notifications_per_month: Annotated[int, Field(ge=0)] = 50
    deploys_per_month: Annotated[float, Field(ge=0)] = 2.0
    image_build_minutes: Annotated[float, Field(ge=0)] = 10.0
    container_image_gb: Annotated[float, Field(ge=0)] = 0.5
    restore_drill_minutes: Annotated[float, Field(ge=0)] = 10.0
    # Runs of the delivery pipeline a month, when [pipeline] is on (each builds and deploys twice).
    pipeline_runs_per_month: Annotated[float, Field(ge=0)] = 4.0


class Config(_Section):
    pds: PdsSettings
    aws: AwsSettings
    edge: EdgeSettings = EdgeSettings()
    task: TaskSettings = TaskSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    cost: CostSettings = CostSettings()
    backup: BackupSettings = BackupSettings()
    relay: RelaySettings = RelaySettings()
    recover: RecoverSettings = RecoverSettings()
    pipeline: PipelineSettings = PipelineSettings()
    source: Path = Path(EXAMPLE_CONFIG_FILE)

    @model_validator(mode="before")
    @classmethod
    def _direct_defaults(cls, data: Any) -> Any:
        # The direct shape exists to be cheap: Fargate Spot unless [task] spot says otherwise.
        if not isinstance(data, dict):
            return data
        edge = data.get("edge")
        task = data.get("task")
        if (
            isinstance(edge, dict)
            and edge.get("kind") == EdgeKind.DIRECT.value
            and (task is None or (isinstance(task, dict) and "spot" not in task))
        ):
            data = {**data, "task": {**(task or {}), "spot": True}}
        return data

    @model_validator(mode="after")
    def _recover_in_this_account(self) -> Config:
        recover = self.recover
        if recover.rotation_key_arn and (
            recover.rotation_key_region != self.aws.region
            or recover.rotation_key_account != self.aws.account
        ):
            raise ValueError(
                f"recover.rotation_key_arn is in account {recover.rotation_key_account}, region "
                f"{recover.rotation_key_region}, but [aws] deploys to account "
                f"{self.aws.account}, region {self.aws.region}; a stack can adopt only a key of "
                f"its own account and region: set [aws] account and region to the old stack's, "
                f"or give the ARN of the key retained there"
            )
        return self

    @model_validator(mode="after")
    def _pipeline_fits(self) -> Config:
        problems = self.pipeline.problems_with(
            domain=self.pds.domain,
            hosted_zone_name=self.pds.hosted_zone_name,
            stack_name=self.aws.stack_name,
            account=self.aws.account,
            region=self.aws.region,
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_prod(self) -> bool:
        return self.aws.mode is Mode.PROD

    @property
    def is_direct(self) -> bool:
        return self.edge.kind is EdgeKind.DIRECT

    @property
    def acme_email(self) -> str:
        return self.edge.acme_email or self.pds.contact_email


def _describe(error: ErrorDetails, data: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    section = ".".join(loc[:-1])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not loc:  # a check across sections names its keys itself
        return message
    if error["type"] == "missing":
        return f"[{section or 'top level'}] {loc[-1]} is missing; add it (see pds.example.toml)"
    if error["type"] == "extra_forbidden":
        return (
            f"[{section}] {loc[-1]} is not a known setting; "
            "check its spelling against pds.example.toml"
        )
    value: Any = data
    for part in error["loc"]:
        value = value.get(part) if isinstance(value, dict) else None
    key = ".".join(loc)
    if value is None or isinstance(value, dict):
        return f"{key}: {message}"
    return f"{key} = {value!r}: {message}"


def parse_config(data: dict[str, Any], source: Path = Path(EXAMPLE_CONFIG_FILE)) -> Config:
    """Validate already-parsed TOML data; raise ConfigError with every problem found."""
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(e, data)}" for e in exc.errors())
        raise ConfigError(f"{source}: invalid config:\n{problems}") from None


def load_config(path: str | Path = EXAMPLE_CONFIG_FILE) -> Config:
    """Read and validate the TOML config at `path`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path}: config file not found; copy pds.example.toml to {path.name} and set "
            f"your domain and hosted zone, or pass another file with -c config=PATH"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the line it names") from None
    return parse_config(data, path)
