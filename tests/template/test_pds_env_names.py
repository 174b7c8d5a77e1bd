"""The stack sets only PDS settings the installed PDS reads, and reviews every one it leaves unset.

The names come from the installed @atproto/pds itself: `node_modules/@atproto/pds/dist/config/
env.js` (`readEnv`), where each setting is read by `envStr/envInt/envBool/envList('PDS_...')`.
The local runtime installs the package the deployed image carries (versions.py), so this is the
reader the task runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pds_aws.infra.pds_settings_review import UNSET_PDS_SETTINGS
from pds_aws.local.taskdef import LocalEndpoints, local_pds_environment
from pds_aws.names import PDS_CONTAINER as PDS_CONTAINER_NAME
from pds_aws.versions import LOCAL_PDS_PACKAGE_VERSION

ROOT = Path(__file__).resolve().parents[2]
PDS_PACKAGE = ROOT / "node_modules/@atproto/pds"
ENV_READER = PDS_PACKAGE / "dist/config/env.js"
_READ_CALL = re.compile(r"\benv(?:Str|Int|Bool|List)\(\s*['\"](PDS_[A-Z0-9_]+)['\"]\s*\)")
# Read by our launcher (pds_aws/local/pds_launcher.cjs), not by the PDS: the local listen port.
LAUNCHER_ONLY = frozenset({"PDS_LOCAL_LISTEN_PORT"})


def names_read_by(env_js: str) -> set[str]:
    """Every `PDS_*` name an @atproto/pds `config/env.js` reads."""
    return set(_READ_CALL.findall(env_js))


@pytest.fixture(scope="module")
def read_by_pds() -> set[str]:
    version = json.loads((PDS_PACKAGE / "package.json").read_text())["version"]
    assert version == LOCAL_PDS_PACKAGE_VERSION, "run `make install`: node_modules is stale"
    return names_read_by(ENV_READER.read_text(encoding="utf-8"))


def pds_settings_in(template: dict[str, Any]) -> set[str]:
    """`PDS_*` names of the pds container: plain environment and ECS secrets."""
    names: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container["Name"] == PDS_CONTAINER_NAME:
                entries = container.get("Environment", []) + container.get("Secrets", [])
                names |= {e["Name"] for e in entries if e["Name"].startswith("PDS_")}
    return names


def test_the_parser_finds_the_pds_settings() -> None:
    sample = "hostname: envStr('PDS_HOSTNAME'),\n port: envInt(\"PDS_PORT\"), x: other('PDS_NO')"
    assert names_read_by(sample) == {"PDS_HOSTNAME", "PDS_PORT"}


def test_installed_pds_reads_the_settings_the_stack_relies_on(read_by_pds: set[str]) -> None:
    assert len(read_by_pds) > 50
    assert {"PDS_HOSTNAME", "PDS_RATE_LIMITS_ENABLED", "PDS_RATE_LIMIT_BYPASS_KEY"} <= read_by_pds


def test_stack_sets_no_pds_setting_the_pds_does_not_read(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any], read_by_pds: set[str]
) -> None:
    set_by_stack = pds_settings_in(stack_template) | pds_settings_in(prod_stack_template)
    assert "PDS_HOSTNAME" in set_by_stack
    unknown = sorted(set_by_stack - read_by_pds)
    assert not unknown, (
        f"the stack sets {unknown}, which @atproto/pds {LOCAL_PDS_PACKAGE_VERSION} never reads "
        f"(dist/config/env.js): a typo or a setting the PDS dropped"
    )


def test_every_pds_setting_is_set_or_reviewed(
    stack_template: dict[str, Any], prod_stack_template: dict[str, Any], read_by_pds: set[str]
) -> None:
    set_by_stack = pds_settings_in(stack_template) | pds_settings_in(prod_stack_template)
    unreviewed = sorted(read_by_pds - set_by_stack - set(UNSET_PDS_SETTINGS))
    assert not unreviewed, (
        f"@atproto/pds reads {unreviewed}, which the stack neither sets nor lists in "
        f"pds_aws/infra/pds_settings_review.py: decide, then set it or list it with a reason"
    )
    stale = sorted(set(UNSET_PDS_SETTINGS) - (read_by_pds - set_by_stack))
    assert not stale, (
        f"pds_settings_review.py lists {stale}, which the stack now sets or the PDS no longer "
        f"reads: remove them from the list"
    )
    assert all(len(reason) > 10 for reason in UNSET_PDS_SETTINGS.values())


def test_local_substitutions_are_pds_settings_too(read_by_pds: set[str]) -> None:
    endpoints = LocalEndpoints(
        aws_url="http://127.0.0.1:1",
        plc_url="http://localhost:2",
        smtp_url="smtp://127.0.0.1:3",
        public_port=4,
        pds_listen_port=5,
        region="us-east-1",
        volumes={},
        bin_dir=ROOT,
    )
    local = {n for n in local_pds_environment(endpoints) if n.startswith("PDS_")}
    assert not sorted(local - read_by_pds - LAUNCHER_ONLY)
