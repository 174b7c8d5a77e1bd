"""`[recover]` settings: validated before anything is synthesized, with the key and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pds_aws.config import ConfigError, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "pds.example.toml"
KEY_ARN = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GOOD = {
    "backup_bucket": "blueskypds-storagebackupbucket-abc123",
    "blob_bucket": "blueskypds-storageblobbucket-def456",
    "rotation_key_arn": KEY_ARN,
}


def with_recover(**recover: str) -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["recover"] = recover
    return data


def problem(**recover: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse_config(with_recover(**recover), EXAMPLE)
    return str(error.value)


def test_example_documents_recover_commented_out_and_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = re.search(r"^# \[recover\]\n((?:# .*\n)+)", text, re.MULTILINE)
    assert block is not None
    uncommented = "[recover]\n" + "".join(
        line.removeprefix("# ") + "\n" for line in block.group(1).splitlines()
    )
    keys = tomllib.loads(uncommented)["recover"]
    assert set(keys) == set(GOOD)
    assert not parse_config(tomllib.loads(text), EXAMPLE).recover.enabled


def test_all_three_set_is_adopted() -> None:
    recover = parse_config(with_recover(**GOOD), EXAMPLE).recover
    assert recover.enabled
    assert (recover.rotation_key_region, recover.rotation_key_account) == (
        "us-east-2",
        "123456789012",
    )


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_partial_recover_names_what_is_missing(missing: str) -> None:
    message = problem(**{k: v for k, v in GOOD.items() if k != missing})
    assert f"but not {missing}" in message
    assert "or remove [recover]" in message


@pytest.mark.parametrize(
    "name",
    ["ab", "Upper-Case", "under_score", "-leading", "trailing-", "192.168.1.1", "a..b", "a" * 64],
)
def test_bad_bucket_name_is_refused_with_where_to_find_it(name: str) -> None:
    message = problem(**{**GOOD, "backup_bucket": name})
    assert f"recover.backup_bucket = {name!r}" in message
    assert "BackupBucketName" in message


def test_same_bucket_twice_is_refused() -> None:
    message = problem(**{**GOOD, "blob_bucket": GOOD["backup_bucket"]})
    assert "name the same bucket" in message


@pytest.mark.parametrize(
    "arn",
    [
        "alias/pds-rotation",
        "arn:aws:kms:us-east-2:123456789012:alias/pds-rotation",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-2:12345678901:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-2:123456789012:key/1234ABCD-12ab-34cd-56ef-1234567890ab",
        "arn:aws:s3:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        KEY_ARN + "\n",
    ],
)
def test_not_a_key_arn_is_refused_with_an_example(arn: str) -> None:
    message = problem(**{**GOOD, "rotation_key_arn": arn})
    assert "recover.rotation_key_arn" in message
    assert "is not a KMS key ARN" in message
    assert "example: 'arn:aws:kms:" in message


@pytest.mark.parametrize(
    ("arn", "wrong"),
    [
        (KEY_ARN.replace("us-east-2", "eu-west-1"), "region eu-west-1"),
        (KEY_ARN.replace("123456789012", "210987654321"), "account 210987654321"),
    ],
)
def test_key_of_another_account_or_region_is_refused(arn: str, wrong: str) -> None:
    message = problem(**{**GOOD, "rotation_key_arn": arn})
    assert wrong in message
    assert "account 123456789012, region us-east-2" in message
    assert "set [aws] account and region" in message
