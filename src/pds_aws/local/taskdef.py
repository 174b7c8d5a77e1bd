"""From the synthesized template to local processes: the one mapping, pure and tested.

The local runtime runs what ECS would run. Everything about a container (environment,
secrets, command, health check, start order, mounts) is read here from the stack's
`AWS::ECS::TaskDefinition`; AWS references are resolved to their local counterparts
(bucket -> local bucket, KMS key -> local key id, secret -> local secret ARN), and a short,
explicit list of local-only settings is applied on top (`LOCAL_PDS_ENVIRONMENT`,
`REMOVED_PDS_ENVIRONMENT`). A change to the stack's container environment therefore
reaches `make run` with no second edit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_aws.errors import PdsAwsError
from pds_aws.local import direct_edge
from pds_aws.names import BACKUP_CONTAINER, PDS_CONTAINER

LOCAL_BACKUP_LEASE_SECONDS = "15"
# moto's default account: ARNs the local AWS hands out carry it.
LOCAL_ACCOUNT_ID = "123456789012"
# Dummy credentials: moto accepts any; they only have to be present for the SDKs.
LOCAL_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
# Handles under a reserved test TLD: nothing created locally can collide with a real name.
LOCAL_HANDLE_DOMAIN = ".test"

# Set by the official image's Dockerfile (ENV), so not in the task definition.
IMAGE_ENVIRONMENT: dict[str, dict[str, str]] = {
    PDS_CONTAINER: {"NODE_ENV": "production", "UV_USE_IO_URING": "0"},
    BACKUP_CONTAINER: {"PYTHONUNBUFFERED": "1"},
}
# Settings that would reach the public network; removed so nothing leaves the machine.
REMOVED_PDS_ENVIRONMENT: tuple[str, ...] = (
    "PDS_CRAWLERS",
    "PDS_BSKY_APP_VIEW_URL",
    "PDS_BSKY_APP_VIEW_DID",
    "PDS_REPORT_SERVICE_URL",
    "PDS_REPORT_SERVICE_DID",
)


class TaskDefinitionError(PdsAwsError):
    """The template does not hold a task definition the local runtime can run."""


@dataclass(frozen=True)
class LocalAws:
    """What the local AWS holds for each resource of the template, by logical id."""

    region: str
    bucket_names: Mapping[str, str]
    kms_key_ids: Mapping[str, str]
    secret_arns: Mapping[str, str]

    def key_arn(self, logical_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{LOCAL_ACCOUNT_ID}:key/{self.kms_key_ids[logical_id]}"


# --- intrinsic functions ------------------------------------------------------------------


class _Resolver:
    def __init__(self, template: Mapping[str, Any], aws: LocalAws) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.aws = aws

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.aws.region,
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name].get("Default", ""))
        kind = self.resources.get(name, {}).get("Type")
        if kind == "AWS::S3::Bucket":
            return self.aws.bucket_names[name]
        if kind == "AWS::KMS::Key":
            return self.aws.kms_key_ids[name]
        if kind == "AWS::SecretsManager::Secret":
            return self.aws.secret_arns[name]
        if kind is None:
            raise TaskDefinitionError(f"the template references {name!r}, which it does not hold")
        # Log groups, roles and the like: nothing local stands for them.
        return f"local-{name}"

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.resources.get(name, {}).get("Type")
        if kind == "AWS::S3::Bucket":
            bucket = self.aws.bucket_names[name]
            return {
                "Arn": f"arn:aws:s3:::{bucket}",
                "DomainName": f"{bucket}.s3.amazonaws.com",
                "RegionalDomainName": f"{bucket}.s3.{self.aws.region}.amazonaws.com",
            }.get(attribute, f"local-{name}-{attribute}")
        if kind == "AWS::KMS::Key":
            return self.aws.key_arn(name) if attribute == "Arn" else self.aws.kms_key_ids[name]
        if kind == "AWS::SecretsManager::Secret":
            return self.aws.secret_arns[name]
        if attribute == "Arn" or attribute.endswith(".Arn"):
            # Placeholder ARN, well-formed so Fn::Split/Fn::Select over it still work.
            return f"arn:aws:local:{self.aws.region}:{LOCAL_ACCOUNT_ID}:{name}"
        return f"local-{name}-{attribute}"

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and not token.startswith("AWS::"):
                resource, attribute = token.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, arg), *_ = value.items()
            if function == "Ref":
                return self.ref(arg)
            if function == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if function == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(p) for p in self.resolve(parts))
            if function == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if function == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if function == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if function.startswith("Fn::"):
                raise TaskDefinitionError(
                    f"{function} is not supported by the local runtime's template reader "
                    f"(pds_aws/local/taskdef.py); resolve it there"
                )
        return {k: self.resolve(v) for k, v in value.items()}


def resolve(value: Any, template: Mapping[str, Any], aws: LocalAws) -> Any:
    """`value` with every CloudFormation intrinsic replaced by its local counterpart."""
    return _Resolver(template, aws).resolve(value)


# --- the task definition --------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """An ECS secret: a Secrets Manager secret, optionally one JSON key of it."""

    secret_id: str
    json_key: str | None = None


def parse_secret_value_from(value_from: str) -> SecretRef:
    """ECS `ValueFrom`: `arn:aws:secretsmanager:R:A:secret:NAME[:json-key[:stage[:id]]]`."""
    parts = value_from.split(":")
    if value_from.startswith("arn:") and len(parts) >= 7:
        return SecretRef(":".join(parts[:7]), parts[7] or None if len(parts) > 7 else None)
    return SecretRef(value_from)


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]  # ECS form: ("CMD", ...) or ("CMD-SHELL", "...")
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int = 0

    def argv(self, port_map: Mapping[int, int]) -> list[str]:
        """The command to run locally, with container ports replaced by the local ones."""
        kind, *rest = self.command
        rest = [_local_ports(arg, port_map) for arg in rest]
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(rest)]
        if kind == "CMD":
            return rest
        raise TaskDefinitionError(f"health check command must start with CMD or CMD-SHELL: {kind}")


def _local_ports(text: str, port_map: Mapping[int, int]) -> str:
    for container_port, local_port in port_map.items():
        text = re.sub(
            rf"\b(127\.0\.0\.1|localhost):{container_port}\b", rf"\g<1>:{local_port}", text
        )
    return text


@dataclass(frozen=True)
class ContainerDefinition:
    name: str
    essential: bool
    entry_point: tuple[str, ...]
    command: tuple[str, ...]
    environment: Mapping[str, str]
    secrets: Mapping[str, SecretRef]
    health_check: HealthCheck | None
    depends_on: tuple[tuple[str, str], ...]  # (container, condition)
    mount_points: Mapping[str, str]  # container path -> volume name
    container_ports: tuple[int, ...]
    stop_timeout: int | None


@dataclass(frozen=True)
class TaskDefinition:
    logical_id: str
    containers: Mapping[str, ContainerDefinition]
    volumes: tuple[str, ...] = field(default=())

    def start_order(self) -> list[str]:
        """Containers ordered so each starts after those it depends on (ECS dependsOn)."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                raise TaskDefinitionError(f"dependsOn cycle through container {name!r}")
            if name not in self.containers:
                raise TaskDefinitionError(f"dependsOn names an unknown container {name!r}")
            visiting.add(name)
            for dependency, _condition in self.containers[name].depends_on:
                visit(dependency)
            visiting.discard(name)
            order.append(name)

        for name in sorted(self.containers):
            visit(name)
        return order


_LOCAL_CONTAINER_FIELDS = frozenset(
    {
        "Name",
        "Essential",
        "EntryPoint",
        "Command",
        "Environment",
        "Secrets",
        "HealthCheck",
        "DependsOn",
        "MountPoints",
        "PortMappings",
        "StopTimeout",
    }
)


def find_task_definition(template: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The service's task definition: the one with a container named `pds`."""
    found = [
        (logical_id, resource["Properties"])
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::ECS::TaskDefinition"
        and any(
            c.get("Name") == PDS_CONTAINER
            for c in resource.get("Properties", {}).get("ContainerDefinitions", [])
        )
    ]
    if len(found) != 1:
        raise TaskDefinitionError(
            f"expected one AWS::ECS::TaskDefinition with a container named {PDS_CONTAINER!r}, "
            f"found {len(found)}; check pds_aws/service.py"
        )
    return found[0]


def read_task_definition(template: Mapping[str, Any], aws: LocalAws) -> TaskDefinition:
    """The PDS task definition, every value resolved to the local AWS."""
    logical_id, props = find_task_definition(template)
    resolver = _Resolver(template, aws)
    containers: dict[str, ContainerDefinition] = {}
    for raw in props["ContainerDefinitions"]:
        # Only what a local process uses; the image and log settings stay unresolved.
        c = {k: resolver.resolve(v) for k, v in raw.items() if k in _LOCAL_CONTAINER_FIELDS}
        health = c.get("HealthCheck")
        containers[c["Name"]] = ContainerDefinition(
            name=c["Name"],
            essential=bool(c.get("Essential", True)),
            entry_point=tuple(c.get("EntryPoint", ())),
            command=tuple(c.get("Command", ())),
            environment={e["Name"]: str(e["Value"]) for e in c.get("Environment", [])},
            secrets={
                s["Name"]: parse_secret_value_from(str(s["ValueFrom"]))
                for s in c.get("Secrets", [])
            },
            health_check=(
                HealthCheck(
                    command=tuple(health["Command"]),
                    interval=int(health.get("Interval", 30)),
                    timeout=int(health.get("Timeout", 5)),
                    retries=int(health.get("Retries", 3)),
                    start_period=int(health.get("StartPeriod", 0)),
                )
                if health
                else None
            ),
            depends_on=tuple((d["ContainerName"], d["Condition"]) for d in c.get("DependsOn", [])),
            mount_points={m["ContainerPath"]: m["SourceVolume"] for m in c.get("MountPoints", [])},
            container_ports=tuple(int(p["ContainerPort"]) for p in c.get("PortMappings", [])),
            stop_timeout=int(c["StopTimeout"]) if "StopTimeout" in c else None,
        )
    volumes = tuple(v["Name"] for v in props.get("Volumes", []))
    return TaskDefinition(logical_id, containers, volumes)


# --- local substitutions --------------------------------------------------------------


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local stand-ins for AWS and the network listen."""

    aws_url: str  # moto server
    plc_url: str  # the PLC directory, as http://localhost:PORT
    smtp_url: str  # the SMTP sink
    public_port: int  # the edge proxy: the PDS's public URL is http://localhost:public_port
    pds_listen_port: int  # where the PDS itself listens (127.0.0.1)
    region: str
    volumes: Mapping[str, Path]  # task volume name -> host directory
    bin_dir: Path  # the virtualenv's bin: node 24, litestream, pds-aws-backup
    # With [edge] kind = "direct": the local Caddy's ports and the local authority.
    direct: direct_edge.DirectPorts | None = None


def local_pds_environment(endpoints: LocalEndpoints) -> dict[str, str]:
    """What the local PDS needs instead of its AWS values, and why each one differs."""
    if endpoints.direct is not None:
        return direct_edge.pds_environment(
            listen_port=endpoints.pds_listen_port,
            plc_url=endpoints.plc_url,
            aws_url=endpoints.aws_url,
            smtp_url=endpoints.smtp_url,
            authority=endpoints.direct.authority,
        )
    return {
        # The PDS's public URL is http://localhost:PDS_PORT when the hostname is localhost;
        # PDS_PORT is the edge's port, as https://<domain> is the ALB on AWS.
        "PDS_HOSTNAME": "localhost",
        "PDS_PORT": str(endpoints.public_port),
        "PDS_LOCAL_LISTEN_PORT": str(endpoints.pds_listen_port),
        # The OAuth provider refuses a plain-http public URL outside dev mode; the local edge
        # has no TLS (the ALB terminates it on AWS).
        "PDS_DEV_MODE": "true",
        "PDS_DID_PLC_URL": endpoints.plc_url,
        "PDS_SERVICE_HANDLE_DOMAINS": LOCAL_HANDLE_DOMAIN,
        # The blobstore client takes its endpoint from its own settings.
        "PDS_BLOBSTORE_S3_ENDPOINT": endpoints.aws_url,
        "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE": "true",
        # SES SMTP on AWS; a sink that files each message locally.
        "PDS_EMAIL_SMTP_URL": endpoints.smtp_url,
    }


def local_ports(container: ContainerDefinition, endpoints: LocalEndpoints) -> dict[int, int]:
    """Container port -> local port (only the PDS exposes one)."""
    if container.name == PDS_CONTAINER:
        return {p: endpoints.pds_listen_port for p in container.container_ports}
    return {}


def task_local_ports(task: TaskDefinition, endpoints: LocalEndpoints) -> dict[int, int]:
    """Container port -> local port, for every container of the task."""
    ports: dict[int, int] = {}
    for container in task.containers.values():
        ports.update(local_ports(container, endpoints))
    return ports


def container_environment(
    container: ContainerDefinition,
    *,
    secret_values: Mapping[str, str],
    endpoints: LocalEndpoints,
    task_ports: Mapping[int, int] | None = None,
) -> dict[str, str]:
    """The complete environment of a container's local process.

    Built from scratch like a container's: the image's ENV, the task definition's environment
    and secrets, what ECS adds (AWS_REGION), then the local substitutions. Nothing of the
    caller's environment leaks in (AWS_CA_BUNDLE on these machines breaks Litestream).
    `task_ports` (`task_local_ports`): the containers of a Fargate task share localhost, so a
    value naming 127.0.0.1:PORT of another container (the backup sidecar's PDS_HEALTH_URL)
    is given that container's local port.
    """
    missing = sorted(set(container.secrets) - set(secret_values))
    if missing:
        raise TaskDefinitionError(
            f"container {container.name!r}: no local value for secret(s) {', '.join(missing)}"
        )
    env: dict[str, str] = {
        "PATH": f"{endpoints.bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_REGION": endpoints.region,
        "AWS_DEFAULT_REGION": endpoints.region,
    }
    env.update(IMAGE_ENVIRONMENT.get(container.name, {}))
    env.update(container.environment)
    env.update({name: secret_values[name] for name in container.secrets})
    # Every SDK in the task (the PDS's AWS SDK v3, boto3, Litestream) honours these.
    env.update(LOCAL_AWS_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoints.aws_url
    for container_path, volume in container.mount_points.items():
        host_path = str(endpoints.volumes[volume])
        for name, value in env.items():
            if value == container_path or value.startswith(container_path.rstrip("/") + "/"):
                env[name] = host_path + value[len(container_path.rstrip("/")) :]
    if task_ports:
        env = {name: _local_ports(value, task_ports) for name, value in env.items()}
    if container.name == BACKUP_CONTAINER:
        # One local task at a time, and `local stop`/`crash` end every process: a crashed
        # local sidecar's backup lease need not block the next start for the AWS length.
        env.setdefault("BACKUP_LEASE_SECONDS", LOCAL_BACKUP_LEASE_SECONDS)
    if container.name == PDS_CONTAINER:
        for name in REMOVED_PDS_ENVIRONMENT:
            env.pop(name, None)
        env.update(local_pds_environment(endpoints))
    if endpoints.direct is not None:
        env.update(direct_edge.container_environment(container.name, endpoints.direct))
    return env


def secret_value(secret_string: str, ref: SecretRef) -> str:
    """The value ECS injects for `ref` given the secret's SecretString."""
    if ref.json_key is None:
        return secret_string
    import json

    data = json.loads(secret_string)
    if ref.json_key not in data:
        raise TaskDefinitionError(f"secret {ref.secret_id} has no JSON key {ref.json_key!r}")
    return str(data[ref.json_key])


def local_command(container: ContainerDefinition, *, node: Path, launcher: Path) -> list[str]:
    """The process a container runs locally.

    The PDS image's CMD (node index.js inside the image) is the one substitution: the same
    start sequence runs from node_modules via the launcher. Every other container runs its
    task-definition entry point + command from the virtualenv.
    """
    if container.name == PDS_CONTAINER:
        return [str(node), "--enable-source-maps", str(launcher)]
    argv = [*container.entry_point, *container.command]
    if not argv:
        raise TaskDefinitionError(
            f"container {container.name!r} has no command in the task definition; the local "
            f"runtime cannot know what its image would run"
        )
    return argv
