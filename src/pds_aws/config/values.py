"""The values the config's sections share: Fargate's sizes, the regions, the patterns a
setting must match (each with the message and example a wrong value gets), the section base."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

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
DOMAIN_RE = re.compile(rf"(?=.{{1,253}}\Z)({_LABEL}\.)+[a-z]{{2,63}}")
_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([a-z0-9-]+\.)+[a-z]{2,63}")
ZONE_ID_RE = re.compile(r"Z[A-Z0-9]{4,31}")
_ACCOUNT_RE = re.compile(r"\d{12}")
# OCI distribution spec: a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}; a sha256 digest is 64 hex.
IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
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


def check_match(
    value: str, pattern: re.Pattern[str], problem: str, *, empty_ok: bool = False
) -> str:
    """`value` if the whole of `pattern` matches it, else the error `problem`. With `empty_ok`,
    an empty value (an optional setting left out) passes too."""
    if (value or not empty_ok) and not pattern.fullmatch(value):
        raise ValueError(problem)
    return value


def whole_match(
    pattern: re.Pattern[str], problem: str, *, empty_ok: bool = False
) -> AfterValidator:
    """A string setting checked with `check_match`."""
    return AfterValidator(lambda value: check_match(value, pattern, problem, empty_ok=empty_ok))


def arn_part(pattern: re.Pattern[str], arn: str, part: str) -> str:
    """The group `part` of `pattern` (an ARN's region, account) in `arn`; empty if it does not
    match (an optional ARN left out)."""
    match = pattern.fullmatch(arn)
    return match[part] if match else ""


def dns_name(example: str, *, empty_ok: bool = False) -> BeforeValidator:
    """A lower-case DNS name setting; a trailing '.' (as Route 53 shows zone names) is dropped.
    With `empty_ok`, an empty value (an optional setting left out) passes too."""

    def check(value: object) -> object:
        if isinstance(value, str) and (value or not empty_ok):
            value = value.removesuffix(".")
            if not DOMAIN_RE.fullmatch(value):
                raise ValueError(f"is not a valid lower-case DNS name; example: {example!r}")
        return value

    return BeforeValidator(check)


ZoneId = Annotated[
    str,
    whole_match(
        ZONE_ID_RE,
        "is not a Route 53 hosted zone id; copy it from the Route 53 console, "
        "example: 'Z0123456789ABCDEFGHIJ'",
    ),
]
AccountId = Annotated[
    str, whole_match(_ACCOUNT_RE, "must be a 12-digit AWS account id, example: '123456789012'")
]
Did = Annotated[
    str,
    whole_match(_DID_RE, "is not a did:plc or did:web identifier; example: 'did:web:api.bsky.app'"),
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_email(value: str, *, entry: bool = False) -> str:
    if not _EMAIL_RE.fullmatch(value):
        what = f"entry {value!r} is" if entry else "is"
        raise ValueError(f"{what} not an e-mail address; example: 'ops@example.com'")
    return value


def check_https_url(url: str) -> str:
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
    if not DOMAIN_RE.fullmatch(host):
        raise ValueError(f"{url!r} has no valid DNS host name; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError(
            f"{url!r} must be the service's base URL without path, query or fragment; {example}"
        )
    del port  # parsed only to reject a bad one
    return url


_SCHEDULE_RE = re.compile(
    r"rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\)"
)

Schedule = Annotated[
    str,
    whole_match(
        _SCHEDULE_RE,
        "is not an EventBridge schedule expression; example: 'cron(0 4 ? * SUN *)' "
        "(Sundays 04:00 UTC) or 'rate(7 days)'",
    ),
]
