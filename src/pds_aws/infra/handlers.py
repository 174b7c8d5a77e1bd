"""Python Lambda functions whose code is one handler directory of this package: the e-mail
credentials' custom resource (email/smtp_url/) and the direct edge's DNS updater
(direct/dns_updater/)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

# What a handler directory holds besides the function's code.
_NOT_CODE = ["__pycache__", "*.pyc", "__init__.py"]


def handler_function(
    scope: Construct,
    construct_id: str,
    directory: Path,
    *,
    handler: str,
    description: str,
    timeout: Duration,
    memory_size: int,
    log_group: logs.ILogGroup,
    environment: Mapping[str, str] | None = None,
) -> lambda_.Function:
    """A Python 3.14 function on ARM64 running `handler` from `directory`."""
    return lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=lambda_.Code.from_asset(str(directory), exclude=_NOT_CODE),
        timeout=timeout,
        memory_size=memory_size,
        log_group=log_group,
        environment=dict(environment) if environment is not None else None,
    )
