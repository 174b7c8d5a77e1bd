"""The plumbing of a deploy-time custom resource: a Python handler behind CDK's provider.

CloudFormation calls the handler synchronously a few times per deploy (Create, Update,
Delete). Every such handler in the stack (the SES SMTP credentials, the PDS secret's keys)
runs the same way: its own log group, a Python Lambda whose code is one directory of the
package, and CDK's provider framework in front of it. The cdk-nag findings these parts raise
are acknowledged here once, with the reason; what a handler may do (its IAM) and what its log
holds are the caller's to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Stack, Validations, custom_resources
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from pds_aws.config import Config
from pds_aws.infra.handlers import handler_function
from pds_aws.infra.monitoring import log_group


@dataclass(frozen=True)
class HandlerSpec:
    """A deploy-time handler's code and what the acknowledgments say of it.

    `code_directory` holds `handler.py` with `on_event`; `apis` names the AWS APIs it calls
    and `log_contents` what its log holds (never a secret).
    """

    code_directory: Path
    description: str
    apis: str
    log_contents: str


@dataclass(frozen=True)
class DeployTimeHandler:
    """The handler function and the provider whose service token the custom resource names."""

    function: lambda_.Function
    provider: custom_resources.Provider

    @property
    def service_token(self) -> str:
        return self.provider.service_token


def deploy_time_handler(
    scope: Construct, name: str, spec: HandlerSpec, *, config: Config
) -> DeployTimeHandler:
    """`{name}HandlerLogs`, `{name}Handler` and `{name}Provider` in `scope`, acknowledged there."""
    handler_logs = log_group(scope, f"{name}HandlerLogs", config)
    function = handler_function(
        scope,
        f"{name}Handler",
        spec.code_directory,
        handler="handler.on_event",
        description=spec.description,
        timeout=Duration.seconds(60),
        memory_size=256,
        log_group=handler_logs,
    )
    provider = custom_resources.Provider(
        scope, f"{name}Provider", on_event_handler=function, log_group=handler_logs
    )
    _acknowledge(scope, function, apis=spec.apis, log_contents=spec.log_contents)
    return DeployTimeHandler(function, provider)


def _acknowledge(
    scope: Construct, function: lambda_.Function, *, apis: str, log_contents: str
) -> None:
    """cdk-nag findings of the handler, its role and the provider, each with why it is accepted."""
    handler_id = Stack.of(scope).get_logical_id(function.node.default_child)  # type: ignore[arg-type]
    Validations.of(scope).acknowledge(
        Acknowledgment(
            id="NIST.800.53.R5-CloudWatchLogGroupEncrypted",
            reason=f"The deploy-time handler logs {log_contents}, never a secret; CloudWatch "
            "encrypts log data at rest with its own keys.",
        ),
        Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            reason="The deploy-time handlers need only the basic logging policy; the managed "
            "policy is the narrowest AWS offers for it.",
        ),
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{handler_id}.Arn>:*]",
            reason="The CDK provider framework invokes any version of the handler function, "
            "and only that function.",
        ),
        Acknowledgment(
            id="NIST.800.53.R5-LambdaConcurrency",
            reason="Runs once per deploy; reserving concurrency fails on new accounts whose "
            "limit is 10.",
        ),
        Acknowledgment(
            id="NIST.800.53.R5-LambdaDLQ",
            reason="Called synchronously by CloudFormation, which reports and rolls back a "
            "failure; there is no asynchronous event to keep.",
        ),
        Acknowledgment(
            id="NIST.800.53.R5-LambdaInsideVPC",
            reason=f"The handler calls only the {apis} APIs; in the VPC it would need "
            "interface endpoints or a NAT, which the design leaves out.",
        ),
    )
