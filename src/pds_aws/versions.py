"""Pinned versions that must move together, declared side by side.

The PDS image tag deployed on AWS and the @atproto/pds package the local runtime installs
live here, with the package version each image tag carries, so anyone can see whether the
local runtime runs the same PDS code as the Fargate task.
"""

from __future__ import annotations

PDS_IMAGE_REPOSITORY = "ghcr.io/bluesky-social/pds"
PDS_IMAGE_TAG = "0.4.5026"

# Image tag -> the @atproto/pds version inside it (the image's service/package.json).
# The official image ships the @atproto/pds 0.5 line under image tags 0.4.50NN, so that hosts
# following the `:0.4` tag (the installer's Watchtower) get it without a major-tag change:
# 0.5.NN is published as image 0.4.50NN (bluesky-social/pds PRs #352 "Next PDS release" and
# #353 started it, 0.5.6 = image 0.4.5006; PR #364 "Update PDS to 0.5.26" = image 0.4.5026).
# 0.5.26 is on npm, so the local runtime installs exactly the PDS code the image runs.
PDS_PACKAGE_IN_IMAGE: dict[str, str] = {
    "0.4.5026": "0.5.26",
}

# What package.json installs for the local runtime (and package-lock.json locks).
LOCAL_PDS_PACKAGE_VERSION = "0.5.26"
PLC_SERVER_PACKAGE_VERSION = "0.0.1"

# aws-cdk-lib (pyproject.toml) and the CDK CLI (package.json) are pinned together.
AWS_CDK_LIB_VERSION = "2.275.0"
CDK_CLI_VERSION = "2.1148.1"
LITESTREAM_VERSION = "0.5.17"
NODE_MAJOR = 24


def local_pds_mismatch(image_tag: str) -> str | None:
    """A warning when the local PDS package differs from the one in the deployed image."""
    in_image = PDS_PACKAGE_IN_IMAGE.get(image_tag)
    if in_image == LOCAL_PDS_PACKAGE_VERSION:
        return None
    return (
        f"the local runtime runs @atproto/pds {LOCAL_PDS_PACKAGE_VERSION}, but image tag "
        f"{image_tag} carries {in_image or 'an unknown version'}: behaviour may differ"
    )
