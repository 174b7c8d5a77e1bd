"""Container images built at deploy time by CodeBuild into the stack's own ECR repositories.

deploy-time-build's ContainerImageBuild runs `docker buildx build` in a CodeBuild project of
the account and pushes to a repository: no Docker on the deploying machine, and no Lambda of
ours. Two images use it: the backup sidecar (built from our sources) and the PDS, copied
from the official image by a one-line Dockerfile (`FROM <pinned reference>`).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct
from deploy_time_build import ContainerImageBuild

from pds_aws.config import Architecture

PDS_IMAGE_DIRECTORY = Path(__file__).resolve().parent / "pds_image"
# Each deploy that changes an image pushes a new tag. Keep the images a rollback may need
# (the circuit breaker returns to the previous task definition) and drop the rest.
KEEP_IMAGES = 5
UNTAGGED_IMAGE_DAYS = 1


def docker_platform(architecture: Architecture) -> ecr_assets.Platform:
    return (
        ecr_assets.Platform.LINUX_ARM64
        if architecture is Architecture.ARM64
        else ecr_assets.Platform.LINUX_AMD64
    )


def image_repository(scope: Construct, construct_id: str) -> ecr.Repository:
    """A repository for one image, emptied and deleted with the stack (a build remakes it)."""
    repository = ecr.Repository(
        scope,
        construct_id,
        image_scan_on_push=True,
        empty_on_delete=True,
        removal_policy=RemovalPolicy.DESTROY,
    )
    repository.add_lifecycle_rule(
        description="untagged layers of replaced images",
        tag_status=ecr.TagStatus.UNTAGGED,
        max_image_age=Duration.days(UNTAGGED_IMAGE_DAYS),
        rule_priority=1,
    )
    repository.add_lifecycle_rule(
        description=f"keep the {KEEP_IMAGES} most recent images",
        tag_status=ecr.TagStatus.ANY,
        max_image_count=KEEP_IMAGES,
        rule_priority=2,
    )
    return repository


def pds_image_copy(
    scope: Construct, construct_id: str, *, reference: str, architecture: Architecture
) -> ContainerImageBuild:
    """The official PDS image at `reference` (tag or digest), copied into its own repository."""
    return ContainerImageBuild(
        scope,
        construct_id,
        directory=str(PDS_IMAGE_DIRECTORY),
        build_args={"PDS_IMAGE": reference},
        # The tag is a hash of the build's inputs: a new reference must make a new tag.
        extra_hash=reference,
        platform=docker_platform(architecture),
        repository=image_repository(scope, f"{construct_id}Repository"),
    )
