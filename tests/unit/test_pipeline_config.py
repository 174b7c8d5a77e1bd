"""`[pipeline]` settings: off by default; a bad value stops with the key and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pds_aws.config import ConfigError, Mode, parse_config
from pds_aws.pipeline.stage_configs import config_of_test_stage

EXAMPLE = Path(__file__).resolve().parents[2] / "pds.example.toml"
CONNECTION = "arn:aws:codestar-connections:us-east-2:123456789012:connection/1234abcd-12ab-34cd-56ef-1234567890ab"
GITHUB = {
    "enabled": True,
    "connection_arn": CONNECTION,
    "repository": "alice/pds-aws",
    "test_domain": "pds-test.example.com",
}


def data_with(pipeline: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["pipeline"] = pipeline
    for name, values in sections.items():
        data[name].update(values)
    return data


def problem(pipeline: dict[str, Any], **sections: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        parse_config(data_with(pipeline, **sections), EXAMPLE)
    return str(error.value)


def test_off_by_default_in_the_example() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert "pipeline" not in data  # documented, commented out
    assert parse_config(data, EXAMPLE).pipeline.enabled is False


def test_example_documents_pipeline_commented_out_and_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = re.search(r"^# \[pipeline\]\n((?:# .*\n)+)", text, re.MULTILINE)
    assert block is not None
    lines = [line.removeprefix("# ") for line in block.group(1).splitlines()]
    section = tomllib.loads("[pipeline]\n" + "\n".join(lines))["pipeline"]
    config = parse_config(data_with(section), EXAMPLE)
    assert config.pipeline.enabled and config.pipeline.uses_github
    assert config.pipeline.repository == "alice/pds-aws"


def test_github_and_s3_sources_parse() -> None:
    github = parse_config(data_with(GITHUB), EXAMPLE).pipeline
    assert (github.uses_github, github.branch, github.connection_region) == (
        True,
        "main",
        "us-east-2",
    )
    s3 = {
        "enabled": True,
        "source_bucket": "alice-pds-source",
        "source_key": "pds-aws/source.zip",
        "test_domain": "pds-test.example.com",
    }
    assert parse_config(data_with(s3), EXAMPLE).pipeline.uses_github is False


def test_codeconnections_arn_prefix_is_accepted() -> None:
    """AWS renamed CodeStar Connections to AWS CodeConnections (2024); new connections carry
    `arn:aws:codeconnections:...`, older ones `arn:aws:codestar-connections:...`."""
    arn = CONNECTION.replace("codestar-connections", "codeconnections")
    assert parse_config(data_with({**GITHUB, "connection_arn": arn}), EXAMPLE).pipeline.enabled


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ({"enabled": True, "test_domain": "pds-test.example.com"}, "needs a source"),
        ({**GITHUB, "source_bucket": "b-bucket", "source_key": "a.zip"}, "keep one of the two"),
        ({**GITHUB, "repository": ""}, "pipeline.repository is missing"),
        (
            {"enabled": True, "source_bucket": "alice-src", "test_domain": "t.example.com"},
            "pipeline.source_key is missing",
        ),
        ({**GITHUB, "test_domain": ""}, "pipeline.test_domain is missing"),
        ({**GITHUB, "connection_arn": "arn:aws:codestar:us-east-2:1:x"}, "pipeline.connection_arn"),
        ({**GITHUB, "repository": "https://github.com/alice/pds"}, "'owner/name'"),
        ({**GITHUB, "branch": "feature..x"}, "not a git branch name"),
        ({**GITHUB, "config_file": "../pds.toml"}, "relative to the repository root"),
        ({**GITHUB, "config_file": "/etc/pds.toml"}, "relative to the repository root"),
        ({**GITHUB, "test_domain": "Pds_Test"}, "pipeline.test_domain = 'Pds_Test'"),
        ({**GITHUB, "test_hosted_zone_id": "zone-1"}, "not a Route 53 hosted zone id"),
        ({**GITHUB, "test_stack_name": "1bad"}, "not a CloudFormation stack name"),
        ({**GITHUB, "frequency": "daily"}, "[pipeline] frequency is not a known setting"),
        (
            {
                "enabled": True,
                "source_bucket": "s",
                "source_key": "x.zip",
                "test_domain": "t.ex.com",
            },
            "pipeline.source_bucket = 's'",
        ),
        (
            {
                "enabled": True,
                "source_bucket": "abc",
                "source_key": "src.tar",
                "test_domain": "t.example.com",
            },
            "key of a .zip",
        ),
    ],
)
def test_bad_pipeline_settings_name_the_key_and_the_fix(
    pipeline: dict[str, Any], expected: str
) -> None:
    assert expected in problem(pipeline)


def test_test_stage_needs_its_own_domain_in_its_zone_and_its_own_stack() -> None:
    assert "needs a domain of its own" in problem({**GITHUB, "test_domain": "pds.example.com"})
    assert "not in hosted zone 'example.com'" in problem({**GITHUB, "test_domain": "pds.other.org"})
    assert "would replace the production stack" in problem(
        {**GITHUB, "test_stack_name": "BlueskyPds"}
    )
    assert "together" in problem({**GITHUB, "test_hosted_zone_id": "Z0123456789TEST"})
    other_zone = {
        **GITHUB,
        "test_domain": "pds.other.org",
        "test_hosted_zone_id": "Z0123456789TEST",
        "test_hosted_zone_name": "other.org",
    }
    assert parse_config(data_with(other_zone), EXAMPLE).pipeline.test_domain == "pds.other.org"


def test_connection_must_be_in_the_pipelines_account_and_region() -> None:
    """CodePipeline runs a source action only in the pipeline's own region (enforced by the
    CodePipeline API; aws-cdk validates it at synth since aws/aws-cdk#4303), and a connection
    is used by pipelines of the account that created it."""
    other = CONNECTION.replace("us-east-2", "eu-west-1")
    message = problem({**GITHUB, "connection_arn": other})
    assert "region eu-west-1" in message and "create the connection there" in message


def test_test_stage_config_has_its_own_names_and_is_test_mode() -> None:
    recover = {
        "backup_bucket": "old-backup-bucket",
        "blob_bucket": "old-blob-bucket",
        "rotation_key_arn": "arn:aws:kms:us-east-2:123456789012:key/"
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    }
    data = data_with(
        GITHUB,
        aws={"mode": "prod"},
        pds={"email_from": "pds@example.com", "handle_domains": [".example.com"]},
    )
    data["recover"] = recover
    prod = parse_config(data, EXAMPLE)
    test = config_of_test_stage(prod)
    assert (test.pds.domain, test.aws.stack_name, test.aws.mode) == (
        "pds-test.example.com",
        "BlueskyPds-Test",
        Mode.TEST,
    )
    # Its own SES identity: mail comes from the test domain, handles live under it.
    assert test.pds.email_from_address == "noreply@pds-test.example.com"
    assert test.pds.service_handle_domains == (".pds-test.example.com",)
    # It adopts none of production's retained resources and has no pipeline of its own.
    assert not test.recover.enabled and not test.pipeline.enabled
    assert test.monitoring.relay_check == 0
    # Everything else is production's.
    assert (test.task, test.pds.image_tag, test.edge) == (prod.task, prod.pds.image_tag, prod.edge)
    named = config_of_test_stage(
        parse_config(data_with({**GITHUB, "test_stack_name": "PdsStaging"}), EXAMPLE)
    )
    assert named.aws.stack_name == "PdsStaging"
