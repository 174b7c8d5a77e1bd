"""`[pipeline]`: the optional delivery pipeline's settings, validated with the rest of the config.

Off by default. When on, the source is the user's repository, either through a CodeStar
connection to GitHub (`connection_arn`, `repository`, `branch`) or an S3 object (`source_bucket`,
`source_key`); the test stage deploys a test-mode copy of the stack under its own domain, SES
identity and stack name (`test_*`). guides/DEPLOY.md, "Delivery pipeline", explains each key.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import ValidationInfo, field_validator, model_validator

from pds_aws.config.values import ZONE_ID_RE, Section, arn_part, check_match, dns_name, whole_match

# CodeStar Connections (renamed AWS CodeConnections in 2024; both ARN prefixes are in use):
# arn:aws:codestar-connections:REGION:ACCOUNT:connection/CONNECTION-ID.
_CONNECTION_ARN_RE = re.compile(
    r"arn:aws:(codestar-connections|codeconnections):(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_CONNECTION_EXAMPLE = (
    "example: 'arn:aws:codestar-connections:us-east-2:123456789012:connection/"
    "1234abcd-12ab-34cd-56ef-1234567890ab' (Developer Tools console -> Settings -> Connections)"
)
# GitHub: an owner of 1-39 letters, digits or '-', a repository of letters, digits, '.', '_', '-'.
_REPOSITORY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# git check-ref-format, the parts a branch name typed into a config gets wrong.
_BRANCH_RE = re.compile(r"(?!/|.*(?:\.\.|//|@\{|\.lock$|/$|\.$))[A-Za-z0-9._/-]{1,255}")
_BUCKET_RE = re.compile(
    r"(?!xn--|sthree-)"  # reserved prefixes
    r"(?!.*\.\.)"  # no two dots in a row
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
)
# An S3 object key: any characters, but no leading '/' and ending in .zip.
_ZIP_KEY_RE = re.compile(r"(?!/).*\.zip", re.DOTALL)
_STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")

# The optional text settings with a pattern: what a value must match whole, and its problem else.
_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "connection_arn": (
        _CONNECTION_ARN_RE,
        f"is not a CodeStar connection ARN; {_CONNECTION_EXAMPLE}",
    ),
    "repository": (
        _REPOSITORY_RE,
        "must be the GitHub repository as 'owner/name', example: 'alice/pds-aws'",
    ),
    "source_bucket": (
        _BUCKET_RE,
        "is not an S3 bucket name (3-63 lower-case letters, digits, '.' or '-'), "
        "example: 'alice-pds-source'",
    ),
    "source_key": (
        _ZIP_KEY_RE,
        "must be the key of a .zip of the repository, without a leading '/', "
        "example: 'pds-aws/source.zip'",
    ),
    "test_hosted_zone_id": (
        ZONE_ID_RE,
        "is not a Route 53 hosted zone id, example: 'Z0123456789ABCDEFGHIJ'",
    ),
    "test_stack_name": (
        _STACK_NAME_RE,
        "is not a CloudFormation stack name (a letter, then letters, digits or '-'), "
        "example: 'BlueskyPds-Test'",
    ),
}
_TEST_DOMAIN = dns_name("pds-test.example.com", empty_ok=True)


class PipelineSettings(Section):
    enabled: bool = False
    # This config file's path in the repository: the pipeline synthesizes and upgrades from it.
    config_file: str = "pds.toml"
    # Source, one of: a CodeStar connection to GitHub ...
    connection_arn: str = ""
    repository: str = ""
    branch: Annotated[str, whole_match(_BRANCH_RE, "is not a git branch name, example: 'main'")] = (
        "main"
    )
    # ... or a zip of the repository in a versioned S3 bucket.
    source_bucket: str = ""
    source_key: str = ""
    # The test stage: a test-mode stack with its own domain, SES identity and stack name.
    test_domain: Annotated[str, _TEST_DOMAIN] = ""
    test_hosted_zone_id: str = ""  # default: [pds] hosted_zone_id
    test_hosted_zone_name: Annotated[str, _TEST_DOMAIN] = ""  # default: [pds] hosted_zone_name
    test_stack_name: str = ""  # default: [aws] stack_name + "-Test"

    @field_validator(*_PATTERNS)
    @classmethod
    def _matches(cls, value: str, info: ValidationInfo) -> str:
        pattern, problem = _PATTERNS[str(info.field_name)]
        return check_match(value, pattern, problem, empty_ok=True)

    @field_validator("config_file")
    @classmethod
    def _config_file(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or path.suffix != ".toml":
            raise ValueError(
                "must be this config's path relative to the repository root, example: 'pds.toml'"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PipelineSettings:
        if not self.enabled:
            return self
        github = bool(self.connection_arn or self.repository)
        s3 = bool(self.source_bucket or self.source_key)
        if github and s3:
            raise ValueError(
                "pipeline: sets both a GitHub source (connection_arn, repository) and an S3 "
                "source (source_bucket, source_key); keep one of the two"
            )
        if not github and not s3:
            raise ValueError(
                "pipeline: enabled = true needs a source: connection_arn + repository (a "
                "CodeStar connection to GitHub) or source_bucket + source_key (a zip in S3); "
                "see pds.example.toml [pipeline]"
            )
        if github and not (self.connection_arn and self.repository):
            missing = "connection_arn" if not self.connection_arn else "repository"
            raise ValueError(
                f"pipeline.{missing} is missing: a GitHub source needs connection_arn and "
                f"repository ('owner/name'); {_CONNECTION_EXAMPLE}"
            )
        if s3 and not (self.source_bucket and self.source_key):
            missing = "source_bucket" if not self.source_bucket else "source_key"
            raise ValueError(
                f"pipeline.{missing} is missing: an S3 source needs source_bucket and "
                "source_key (a .zip of the repository in a versioned bucket)"
            )
        if not self.test_domain:
            raise ValueError(
                "pipeline.test_domain is missing: the test stage deploys a test-mode PDS under "
                "its own domain, example: test_domain = 'pds-test.example.com'"
            )
        return self

    @property
    def uses_github(self) -> bool:
        return bool(self.connection_arn)

    @property
    def connection_region(self) -> str:
        return arn_part(_CONNECTION_ARN_RE, self.connection_arn, "region")

    @property
    def connection_account(self) -> str:
        return arn_part(_CONNECTION_ARN_RE, self.connection_arn, "account")

    def problems_with(
        self, *, domain: str, hosted_zone_name: str, stack_name: str, account: str, region: str
    ) -> list[str]:
        """What is wrong with these settings next to [pds] and [aws] (an empty list: nothing)."""
        if not self.enabled:
            return []
        problems = []
        zone = self.test_hosted_zone_name or hosted_zone_name
        if self.test_domain == domain:
            problems.append(
                f"pipeline.test_domain is [pds] domain {domain!r}: the test stage needs a domain "
                f"of its own, example: test_domain = 'pds-test.{hosted_zone_name}'"
            )
        elif self.test_domain != zone and not self.test_domain.endswith("." + zone):
            problems.append(
                f"pipeline.test_domain {self.test_domain!r} is not in hosted zone {zone!r}; "
                "use a name in that zone, or set test_hosted_zone_id and test_hosted_zone_name"
            )
        if bool(self.test_hosted_zone_id) != bool(self.test_hosted_zone_name):
            problems.append(
                "pipeline: set test_hosted_zone_id and test_hosted_zone_name together (or "
                "neither, to use [pds]'s zone)"
            )
        if self.test_stack_name and self.test_stack_name == stack_name:
            problems.append(
                f"pipeline.test_stack_name is [aws] stack_name {stack_name!r}: the test stage "
                "would replace the production stack; choose another name"
            )
        if self.connection_arn and (
            self.connection_account != account or self.connection_region != region
        ):
            problems.append(
                f"pipeline.connection_arn is in account {self.connection_account}, region "
                f"{self.connection_region}, but the pipeline deploys to account {account}, "
                f"region {region}: create the connection there (Developer Tools console -> "
                "Settings -> Connections) and use its ARN"
            )
        return problems
