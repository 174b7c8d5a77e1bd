"""The config's sections, `Config` and its loader: the only reader of the TOML file.

Every part of pds-aws (the CDK app, the local runtime, the CLI, the cost model) gets its
settings from `load_config`, validated once here. A wrong value stops everything with a
message naming the file, the key, the bad value and a valid example.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from pds_aws.config.pipeline import PipelineSettings
from pds_aws.config.recover import RecoverSettings
from pds_aws.config.values import (
    ACM_DOMAIN_MAX_LENGTH,
    AWS_REGIONS,
    DOMAIN_RE,
    FARGATE_SIZES,
    IMAGE_DIGEST_RE,
    IMAGE_TAG_RE,
    AccountId,
    Architecture,
    Did,
    EdgeKind,
    Mode,
    Schedule,
    Section,
    ZoneId,
    check_email,
    check_https_url,
    dns_name,
)
from pds_aws.errors import ConfigError as ConfigError  # re-exported: raised by load_config
from pds_aws.names import EXAMPLE_CONFIG_FILE
from pds_aws.versions import PDS_IMAGE_REPOSITORY, PDS_IMAGE_TAG


class PdsSettings(Section):
    domain: Annotated[str, dns_name("pds.example.com")]
    hosted_zone_id: ZoneId
    hosted_zone_name: Annotated[str, dns_name("pds.example.com")]
    image_tag: str = PDS_IMAGE_TAG
    invite_required: bool = True
    # Handle suffixes users may register under; default: '.<domain>'.
    handle_domains: tuple[str, ...] = ()
    blob_upload_limit_bytes: Annotated[int, Field(ge=1_000_000, le=1_000_000_000)] = 104_857_600
    email_from: str = ""
    contact_email: str = ""
    plc_url: str = "https://plc.directory"
    app_view_url: str = "https://api.bsky.app"
    app_view_did: Did = "did:web:api.bsky.app"
    report_service_url: str = "https://mod.bsky.app"
    report_service_did: Did = "did:plc:ar7c4by46qjdydhdevvrndac"
    crawlers: tuple[str, ...] = ("https://bsky.network",)
    log_level: Literal["trace", "debug", "info", "warn", "error", "fatal"] = "info"

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
        if tag == "latest" or not IMAGE_TAG_RE.fullmatch(tag):
            raise ValueError(f"must be a pinned image tag such as {example}")
        if "@" in value and not IMAGE_DIGEST_RE.fullmatch(digest):
            raise ValueError(
                f"digest {digest!r} is not 'sha256:' + 64 lower-case hex digits; find the "
                f"digest of a tag as guides/DEPLOY.md says; example: {example}"
            )
        return value

    @field_validator("email_from", "contact_email")
    @classmethod
    def _optional_email(cls, value: str) -> str:
        return check_email(value) if value else value

    @field_validator("handle_domains")
    @classmethod
    def _handle_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for suffix in value:
            if not suffix.startswith(".") or not DOMAIN_RE.fullmatch(suffix[1:]):
                raise ValueError(
                    f"entry {suffix!r} must be '.' + a domain, example: '.example.com'"
                )
        return value

    @field_validator("crawlers", "plc_url", "app_view_url", "report_service_url")
    @classmethod
    def _https(cls, value: Any) -> Any:
        for url in (value,) if isinstance(value, str) else value:
            check_https_url(url)
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


class AwsSettings(Section):
    account: AccountId
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


class TaskSettings(Section):
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


class MonitoringSettings(Section):
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
            check_email(email, entry=True)
        return value


class EdgeSettings(Section):
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
        return check_email(value) if value else value


class BackupSettings(Section):
    # EventBridge schedule of the restore drill (a one-off Fargate task); UTC.
    drill_schedule: Schedule = "cron(0 4 ? * SUN *)"
    # How far back `pds-aws backup restore --at` reaches. Granularity: the exact sync (about a
    # second) over the last minutes, then one point per Litestream L1 compaction (every 6 h).
    # Snapshots (daily) are kept this long plus a day.
    history_days: Annotated[int, Field(ge=1, le=3650)] = 30


class RelaySettings(Section):
    # Accounts a relay takes from one host before the operator asks for more (bsky.network's
    # default is 100). Relays do not report it: raise this after a raise is granted.
    account_limit: Annotated[int, Field(ge=1)] = 100
    # A commit the relay still lacks after this many minutes is an alarm.
    lag_threshold_minutes: Annotated[int, Field(ge=1, le=1440)] = 10


class CostSettings(Section):
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


class Config(Section):
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
