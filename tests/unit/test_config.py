"""Config validation: every bad value stops with a message naming the key and a valid example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLE_CONFIG, example_data
from pds_aws.config import Architecture, ConfigError, Mode, load_config, parse_config


def with_value(section: str, key: str, value: Any) -> dict[str, Any]:
    data = example_data()
    data[section][key] = value
    return data


def test_example_config_loads_with_documented_defaults() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.pds.domain == "pds.example.com"
    assert config.task.architecture is Architecture.ARM64
    assert config.aws.mode is Mode.TEST
    assert config.pds.service_handle_domains == (".pds.example.com",)
    assert config.pds.email_from_address == "noreply@pds.example.com"


@pytest.mark.parametrize(  # one row per bad value: easier to read unwrapped
    ("section", "key", "value", "expected"),
    [
        (
            "pds",
            "domain",
            "not a domain",
            ["pds.domain", "'not a domain'", "example: 'pds.example.com'"],
        ),
        ("pds", "domain", "PDS.Example.com", ["pds.domain", "lower-case"]),
        (
            "pds",
            "hosted_zone_name",
            "other.org",
            ["hosted_zone_name 'other.org' is not a suffix of domain 'pds.example.com'", "example"],
        ),
        (
            "pds",
            "hosted_zone_id",
            "zone-1",
            ["pds.hosted_zone_id = 'zone-1'", "Z0123456789ABCDEFGHIJ"],
        ),
        ("pds", "image_tag", "latest", ["pds.image_tag = 'latest'", "pinned"]),
        ("pds", "email_from", "nobody", ["pds.email_from = 'nobody'", "ops@example.com"]),
        ("pds", "crawlers", ["http://bsky.network"], ["pds.crawlers", "https://"]),
        ("pds", "handle_domains", ["example.com"], ["pds.handle_domains", "'.' + a domain"]),
        ("aws", "region", "mars-north-1", ["aws.region = 'mars-north-1'", "example: 'us-east-2'"]),
        ("aws", "account", "12345", ["aws.account = '12345'", "12-digit"]),
        ("aws", "mode", "staging", ["aws.mode = 'staging'", "'test' or 'prod'"]),
        ("task", "cpu", 3000, ["cpu = 3000 is not a Fargate CPU value", "example: cpu = 1024"]),
        ("task", "memory", 512, ["memory = 512 is not valid with cpu = 512", "1024..4096"]),
        ("task", "architecture", "mips", ["task.architecture = 'mips'", "'arm64' or 'x86_64'"]),
        (
            "monitoring",
            "alarm_emails",
            ["ops-at-example"],
            ["monitoring.alarm_emails", "ops@example.com"],
        ),
        ("monitoring", "log_retention_days", 10, ["monitoring.log_retention_days = 10"]),
        ("pds", "domian", "typo.example.com", ["[pds] domian is not a known setting"]),
    ],
)
def test_bad_value_names_key_value_and_example(
    section: str, key: str, value: Any, expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_value(section, key, value), Path("mine.toml"))
    message = str(err.value)
    assert message.startswith("mine.toml: invalid config:")
    for fragment in expected:
        assert fragment in message


def test_missing_required_key_is_named() -> None:
    data = example_data()
    del data["pds"]["hosted_zone_id"]
    with pytest.raises(ConfigError, match=r"\[pds\] hosted_zone_id is missing"):
        parse_config(data)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "pds.toml")
    assert "config file not found" in str(err.value)
    assert "copy pds.example.toml" in str(err.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pds\ndomain = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_config(bad)


def test_valid_fargate_pairs_are_accepted() -> None:
    for cpu, memory in [(256, 512), (512, 1024), (1024, 8192), (4096, 30720)]:
        data = with_value("task", "cpu", cpu)
        data["task"]["memory"] = memory
        assert parse_config(data).task.memory == memory
