"""Config values are matched whole: no trailing newline slips through `re.match(...$)`, the
domain fits an ACM certificate, service URLs are parsed, and the image may be pinned by digest.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pds_aws.config import ConfigError, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "pds.example.toml"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def data_with(section: str, key: str, value: Any) -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text())
    data.setdefault(section, {})[key] = value
    return data


def problem(section: str, key: str, value: Any) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(data_with(section, key, value), Path("mine.toml"))
    return str(err.value)


@pytest.mark.parametrize(
    ("section", "key", "good", "expected"),
    [
        ("pds", "domain", "pds.example.com", "lower-case DNS name"),
        ("pds", "hosted_zone_id", "Z0123456789ABCDEFGHIJ", "hosted zone id"),
        ("pds", "image_tag", "0.4.5026", "pinned image tag"),
        ("pds", "image_tag", f"0.4.5026@{DIGEST}", "64 lower-case hex"),
        ("pds", "email_from", "ops@example.com", "not an e-mail address"),
        ("pds", "contact_email", "ops@example.com", "not an e-mail address"),
        ("pds", "handle_domains", [".example.com"], "'.' + a domain"),
        ("pds", "plc_url", "https://plc.directory", "whitespace"),
        ("pds", "crawlers", ["https://bsky.network"], "whitespace"),
        ("pds", "app_view_did", "did:web:api.bsky.app", "did:plc or did:web"),
        ("aws", "account", "123456789012", "12-digit"),
        ("aws", "stack_name", "BlueskyPds", "pattern"),
        ("monitoring", "alarm_emails", ["ops@example.com"], "not an e-mail address"),
        ("backup", "drill_schedule", "rate(7 days)", "EventBridge schedule"),
    ],
)
def test_trailing_newline_is_refused(section: str, key: str, good: Any, expected: str) -> None:
    """`re.match('^...$')` accepts 'value\\n' ($ matches before a final newline); each value
    is accepted as written and refused with the newline, with its own message."""
    parse_config(data_with(section, key, good))
    bad = [good[0] + "\n"] if isinstance(good, list) else good + "\n"
    message = problem(section, key, bad)
    assert message.startswith("mine.toml: invalid config:")
    assert f"{section}.{key}" in message
    assert expected in message


def test_domain_fits_an_acm_certificate() -> None:
    """ACM limits the first domain name of a certificate (its CN) to 64 characters (AWS
    Certificate Manager User Guide, "Quotas": "Domain name length ... 64"); a longer PDS
    domain would fail the stack's certificate at deploy time."""
    zone = "example.com"
    fits = "a" * (64 - len(zone) - 1) + "." + zone
    too_long = "a" + fits
    assert parse_config(data_with("pds", "domain", fits)).pds.domain == fits
    message = problem("pds", "domain", too_long)
    assert "pds.domain" in message and "65 characters" in message and "at most 64" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://bsky.network", "must be an https:// URL"),
        ("bsky.network", "must be an https:// URL"),
        ("https://user:secret@bsky.network", "user name or password"),
        ("https://", "no valid DNS host name"),
        ("https://bsky network", "whitespace"),
        ("https://bsky.network\t", "whitespace"),
        ("https://bsky_network", "no valid DNS host name"),
        ("https://bsky.network:99999", "not a valid URL"),
        ("https://bsky.network/xrpc", "without path, query or fragment"),
        ("https://bsky.network?x=1", "without path, query or fragment"),
        ("https://bsky.network#top", "without path, query or fragment"),
    ],
)
def test_service_urls_are_parsed(url: str, expected: str) -> None:
    for key, value in (("plc_url", url), ("crawlers", [url])):
        message = problem("pds", key, value)
        assert f"pds.{key}" in message and expected in message


def test_good_service_urls_are_accepted() -> None:
    for url in ("https://bsky.network", "https://bsky.network/", "https://plc.example.com:8443"):
        assert parse_config(data_with("pds", "plc_url", url)).pds.plc_url == url


def test_image_pinned_by_digest_gives_a_digest_reference() -> None:
    """ECS takes `repository-url/image:tag` or `repository-url/image@digest` (ECS API,
    ContainerDefinition.image): with a digest, the reference drops the tag."""
    tagged = parse_config(data_with("pds", "image_tag", "0.4.5026")).pds
    assert tagged.image_reference == "ghcr.io/bluesky-social/pds:0.4.5026"
    assert tagged.image_digest is None
    pinned = parse_config(data_with("pds", "image_tag", f"0.4.5026@{DIGEST}")).pds
    assert pinned.image_reference == f"ghcr.io/bluesky-social/pds@{DIGEST}"
    assert pinned.image_version_tag == "0.4.5026"
    assert pinned.image_digest == DIGEST


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.4.5026@sha256:abc", "64 lower-case hex"),
        (f"0.4.5026@{DIGEST.upper()}", "64 lower-case hex"),
        (f"0.4.5026@sha512:{'0' * 128}", "64 lower-case hex"),
        (f"latest@{DIGEST}", "pinned image tag"),
        (f"@{DIGEST}", "pinned image tag"),
    ],
)
def test_bad_digest_pins_are_refused(value: str, expected: str) -> None:
    message = problem("pds", "image_tag", value)
    assert "pds.image_tag" in message and expected in message
