"""`make deploy`'s first step: prove that CodeBuild can run a build in this account.

The stack builds its container images at deploy time with CodeBuild. On accounts whose
concurrent-build limit is 0 (common on new accounts) that build fails, and with it the whole
first create. Service Quotas has been seen to report 60 while builds still failed with
"Cannot have more than 0 builds in queue", so the check is real: a throwaway project with the
deploy's own build environment runs a no-op build, and is deleted again.

The build environments come from the synthesized template (the CodeBuild projects the deploy
will use), so the check runs the same environment type, compute type and image.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pds_aws.config import Config, ConfigError

PROJECT_PREFIX = "pds-aws-preflight"
# A build that does nothing: no source, no artifacts, no logs.
NOOP_BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\n"
CODEBUILD_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
DONE = frozenset({"SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"})
LIMIT_FIX = (
    "CodeBuild cannot run builds in this account and region, which the deploy needs to build "
    "its container images. Ask AWS for a higher limit: Service Quotas console -> AWS "
    "CodeBuild -> the 'Concurrently running builds' quota of the {kind} environment -> "
    "Request increase (ask for at least 1; new accounts often get 0 whatever the console "
    "shows), or open a support case. Then run `make deploy` again."
)


class PreflightError(ConfigError):
    """The account cannot deploy the stack yet; the message says why and what to do."""


@dataclass(frozen=True)
class BuildEnvironment:
    """The part of a CodeBuild project that decides which concurrent-build quota applies."""

    type: str
    compute_type: str
    image: str

    @property
    def quota_kind(self) -> str:
        return f"{self.type} / {self.compute_type}"


def build_environments(template: Mapping[str, Any]) -> list[BuildEnvironment]:
    """The distinct build environments of the template's CodeBuild projects."""
    found: dict[tuple[str, str, str], BuildEnvironment] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::CodeBuild::Project":
            continue
        env = resource["Properties"]["Environment"]
        item = BuildEnvironment(env["Type"], env["ComputeType"], env["Image"])
        found[(item.type, item.compute_type, item.image)] = item
    return list(found.values())


@dataclass(frozen=True)
class Step:
    """One AWS call of the check, for `--plan` output and for the tests."""

    service: str
    operation: str
    detail: str


def plan(environments: Iterable[BuildEnvironment], name: str) -> list[Step]:
    steps = [Step("iam", "CreateRole", f"{name}, trusted by codebuild.amazonaws.com, no policy")]
    for index, env in enumerate(environments):
        project = f"{name}-{index}"
        steps += [
            Step("codebuild", "CreateProject", f"{project}: {env.type} {env.compute_type}"),
            Step("codebuild", "StartBuild", f"{project}: no-op buildspec"),
            Step("codebuild", "BatchGetBuilds", f"{project}: until the build ends"),
            Step("codebuild", "DeleteProject", project),
        ]
    return [*steps, Step("iam", "DeleteRole", name)]


Sleep = Callable[[float], None]


@dataclass(frozen=True, kw_only=True)
class CodeBuildCheck:
    """Runs the no-op build for each environment with the given boto3 clients."""

    iam: Any
    codebuild: Any
    name: str
    sleep: Sleep = time.sleep
    role_ready_attempts: int = 12
    build_timeout_s: float = 900.0
    poll_s: float = 5.0

    def run(self, environments: Iterable[BuildEnvironment]) -> None:
        role_arn = self.iam.create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps(CODEBUILD_TRUST),
            Description="pds-aws preflight: a no-op CodeBuild build; deleted right after",
        )["Role"]["Arn"]
        try:
            for index, env in enumerate(environments):
                self._check(f"{self.name}-{index}", env, role_arn)
        finally:
            self.iam.delete_role(RoleName=self.name)

    def _check(self, project: str, env: BuildEnvironment, role_arn: str) -> None:
        self._create_project(project, env, role_arn)
        try:
            status, message = self._build(project)
        finally:
            self.codebuild.delete_project(name=project)
        if status != "SUCCEEDED":
            raise PreflightError(
                f"a no-op CodeBuild build ({env.type}, {env.compute_type}) ended {status}"
                f"{': ' + message if message else ''}. " + LIMIT_FIX.format(kind=env.quota_kind)
            )

    def _create_project(self, project: str, env: BuildEnvironment, role_arn: str) -> None:
        # A new role takes seconds to become assumable by CodeBuild (IAM is eventually
        # consistent); CreateProject says so with InvalidInputException.
        for attempt in range(self.role_ready_attempts):
            try:
                self.codebuild.create_project(
                    name=project,
                    source={"type": "NO_SOURCE", "buildspec": NOOP_BUILDSPEC},
                    artifacts={"type": "NO_ARTIFACTS"},
                    environment={
                        "type": env.type,
                        "computeType": env.compute_type,
                        "image": env.image,
                    },
                    serviceRole=role_arn,
                    logsConfig={
                        "cloudWatchLogs": {"status": "DISABLED"},
                        "s3Logs": {"status": "DISABLED"},
                    },
                    timeoutInMinutes=5,
                )
                return
            except self.codebuild.exceptions.InvalidInputException as exc:
                if "role" not in str(exc).lower() or attempt + 1 == self.role_ready_attempts:
                    raise
                self.sleep(self.poll_s)

    def _build(self, project: str) -> tuple[str, str]:
        try:
            build_id = self.codebuild.start_build(projectName=project)["build"]["id"]
        except self.codebuild.exceptions.AccountLimitExceededException as exc:
            return "refused", str(exc)
        waited = 0.0
        while True:
            (build,) = self.codebuild.batch_get_builds(ids=[build_id])["builds"]
            status = str(build["buildStatus"])
            if status in DONE:
                return status, _failure_message(build)
            if waited >= self.build_timeout_s:
                return "still queued", f"after {waited:.0f} s"
            self.sleep(self.poll_s)
            waited += self.poll_s


def _failure_message(build: Mapping[str, Any]) -> str:
    """The first phase context message of a failed build ("Cannot have more than 0 builds")."""
    for phase in build.get("phases", []):
        for context in phase.get("contexts", []) or []:
            if context.get("message"):
                return str(context["message"])
    return ""


def deployed_codebuild_template(config: Config) -> dict[str, Any]:
    """Every CodeBuild project the deploy may run: the stack's image builds, and with
    `[pipeline]` on, every pipeline step (synth, self-mutation, assets, smoke, upgrade) and
    both stages' image builds."""
    import tempfile

    from pds_aws.infra.synth import synthesize

    if not config.pipeline.enabled:
        return synthesize(config)
    from pds_aws.pipeline.stack import synthesize_pipeline

    with tempfile.TemporaryDirectory(prefix="pds-aws-preflight-") as outdir:
        templates = synthesize_pipeline(config, outdir=outdir)
    return {
        "Resources": {
            f"{name}/{logical_id}": resource
            for name, template in templates.items()
            for logical_id, resource in template.get("Resources", {}).items()
        }
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m pds_aws.infra.preflight --config FILE [--plan]` (run by `make deploy`)."""
    import argparse
    import sys
    import uuid

    from pds_aws.config import load_config

    parser = argparse.ArgumentParser(prog="pds_aws.infra.preflight", description=__doc__)
    parser.add_argument("--config", required=True, help="the TOML config to deploy")
    parser.add_argument("--profile", default=None, help="AWS profile (default: the usual chain)")
    parser.add_argument("--plan", action="store_true", help="print the AWS calls, make none")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        environments = build_environments(deployed_codebuild_template(config))
        name = f"{PROJECT_PREFIX}-{uuid.uuid4().hex[:8]}"
        if args.plan:
            for step in plan(environments, name):
                print(f"{step.service}:{step.operation}  {step.detail}")
            return 0
        import boto3

        session = boto3.Session(profile_name=args.profile, region_name=config.aws.region)
        print(f"preflight: a no-op CodeBuild build in {config.aws.region} ...", flush=True)
        CodeBuildCheck(
            iam=session.client("iam"), codebuild=session.client("codebuild"), name=name
        ).run(environments)
    except ConfigError as exc:
        print(f"preflight: {exc}", file=sys.stderr)
        return 2
    print("preflight: CodeBuild ran a build: the deploy can build its images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
