"""Pure parts of the direct edge: the generated Caddy routes, the DNS updater, the
certificate keeper's decisions, and the backup layout of the TLS files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pds_aws.backup.layout import FileKind, classify
from pds_aws.config import ConfigError
from pds_aws.direct.caddy import CertificateFiles, LocalAuthority, ProxySite, caddy_config
from pds_aws.direct.construct import normalized_record_name
from pds_aws.direct.dns_updater import handler
from pds_aws.direct.tls import CertificateState, Settings, certbot_command, needs_certificate
from pds_aws.routes import DENIED_BODY, ROBOTS_TXT, Route, route

SAMPLE_PATHS = [
    "/",
    "/xrpc/_health",
    "/xrpc/com.atproto.sync.subscribeRepos",
    "/.well-known/atproto-did",
    "/oauth/authorize",
    "/@atproto/oauth-provider/~assets/main.js",
    "/account",
    "/account/settings",
    "/robots.txt",
    "/Xrpc/_health",  # case matters, as on the ALB
    "/accounts",
    "/wp-login.php",
    "/.env",
    "/xrpc",
    "/oauthx",
    "/.well-knownx/a",
]


def _site(**kwargs: object) -> ProxySite:
    values: dict[str, object] = {
        "domain": "pds.example.com",
        "upstream": "127.0.0.1:3000",
        "tls": CertificateFiles("/pds/tls/live/fullchain.pem", "/pds/tls/live/privkey.pem"),
    }
    values.update(kwargs)
    return ProxySite(**values)  # type: ignore[arg-type]


def _caddy_route(config: dict[str, object], path: str) -> str:
    """Which handler the generated HTTPS routes pick for `path`, evaluated like Caddy (first
    matching route; path_regexp is RE2, whose syntax here is also Python's)."""
    routes = config["apps"]["http"]["servers"]["https"]["routes"]  # type: ignore[index]
    for entry in routes:
        matchers = entry.get("match", [{}])
        pattern = matchers[0].get("path_regexp", {}).get("pattern")
        if pattern is None or re.search(pattern, path):
            handle = entry["handle"][0]
            if handle["handler"] == "reverse_proxy":
                return "pds"
            return "robots" if handle["status_code"] == 200 else "denied"
    return "none"


@pytest.mark.parametrize("path", SAMPLE_PATHS)
def test_caddy_routes_match_the_route_table(path: str) -> None:
    expected = {Route.PDS: "pds", Route.ROBOTS: "robots", Route.DENIED: "denied"}[route(path)]
    assert _caddy_route(caddy_config(_site()), path) == expected


def test_caddy_answers_robots_and_403_with_the_route_table_bodies() -> None:
    routes = caddy_config(_site())["apps"]["http"]["servers"]["https"]["routes"]
    bodies = {r["handle"][0].get("status_code"): r["handle"][0].get("body") for r in routes}
    assert bodies[200] == ROBOTS_TXT
    assert bodies[403] == DENIED_BODY
    proxy = routes[1]["handle"][0]
    assert proxy["upstreams"] == [{"dial": "127.0.0.1:3000"}]
    # Shorter than the PDS's 90 s keep-alive, so a closed upstream connection is never reused.
    assert proxy["transport"]["keep_alive"]["idle_timeout"] == "60s"
    assert routes[0]["match"][0]["host"] == ["pds.example.com", "*.pds.example.com"]


@pytest.mark.parametrize(
    ("https_port", "location"),
    [
        (443, "https://{http.request.host}{http.request.uri}"),
        (8443, "https://{http.request.host}:8443{http.request.uri}"),
    ],
)
def test_http_redirects_permanently_to_https(https_port: int, location: str) -> None:
    http = caddy_config(_site(https_port=https_port))["apps"]["http"]["servers"]["http"]
    health, redirect = http["routes"]
    # The one path answered over HTTP: the external health check's, by the PDS itself (a
    # redirect would count as healthy for Route 53 without reaching the PDS).
    assert re.search(health["match"][0]["path_regexp"]["pattern"], "/xrpc/_health")
    assert not re.search(health["match"][0]["path_regexp"]["pattern"], "/xrpc/_healthx")
    assert health["handle"][0]["handler"] == "reverse_proxy"
    assert redirect["handle"][0]["status_code"] == 301
    assert redirect["handle"][0]["headers"]["Location"] == [location]


def test_aws_config_loads_files_and_local_config_uses_the_internal_issuer() -> None:
    aws = caddy_config(_site())
    assert aws["apps"]["tls"]["certificates"]["load_files"] == [
        {"certificate": "/pds/tls/live/fullchain.pem", "key": "/pds/tls/live/privkey.pem"}
    ]
    assert aws["apps"]["http"]["servers"]["https"]["automatic_https"] == {"disable": True}
    assert "pki" not in aws["apps"]
    local = caddy_config(
        _site(tls=LocalAuthority("/ca/root.crt", "/ca/root.key"), storage_dir="/d")
    )
    (policy,) = local["apps"]["tls"]["automation"]["policies"]
    assert policy["issuers"] == [{"module": "internal"}]
    assert policy["subjects"] == ["pds.example.com", "*.pds.example.com"]
    ca = local["apps"]["pki"]["certificate_authorities"]["local"]
    assert ca["install_trust"] is False
    assert ca["root"] == {"certificate": "/ca/root.crt", "private_key": "/ca/root.key"}
    assert local["storage"] == {"module": "file_system", "root": "/d"}
    # Same routes either way: only the certificate's source differs.
    assert (
        local["apps"]["http"]["servers"]["https"]["routes"]
        == aws["apps"]["http"]["servers"]["https"]["routes"]
    )


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("pds.example.com", "pds.example.com"),
        ("*.pds.example.com", "\\052.pds.example.com"),
        ("PDS.Example.com.", "pds.example.com"),
        ("_acme-challenge.pds.example.com", "_acme-challenge.pds.example.com"),
    ],
)
def test_record_names_are_normalized_as_route53_compares_them(name: str, normalized: str) -> None:
    assert normalized_record_name(name) == normalized


def _event(last: str = "RUNNING", desired: str = "RUNNING") -> dict[str, object]:
    return {
        "taskArn": "arn:aws:ecs:us-east-2:123456789012:task/c/abc",
        "lastStatus": last,
        "desiredStatus": desired,
        "attachments": [
            {"type": "ElasticNetworkInterface", "details": []},
            {
                "type": "eni",
                "details": [
                    {"name": "subnetId", "value": "subnet-1"},
                    {"name": "networkInterfaceId", "value": "eni-0abc"},
                ],
            },
        ],
    }


def test_dns_updater_reads_the_interface_and_upserts_both_names() -> None:
    detail = _event()
    assert handler.is_start(detail)
    assert not handler.is_start(_event(desired="STOPPED"))
    assert not handler.is_start(_event(last="PROVISIONING"))
    assert handler.interface_id(detail) == "eni-0abc"
    with pytest.raises(handler.EventError, match="no ENI attachment"):
        handler.interface_id({"taskArn": "t", "attachments": []})
    batch = handler.change_batch("pds.example.com", "203.0.113.7", 60, "task-1")
    changes = [
        (
            c["Action"],
            c["ResourceRecordSet"]["Name"],
            c["ResourceRecordSet"]["Type"],
            c["ResourceRecordSet"]["TTL"],
            c["ResourceRecordSet"]["ResourceRecords"],
        )
        for c in batch["Changes"]
    ]
    assert changes == [
        ("UPSERT", "pds.example.com", "A", 60, [{"Value": "203.0.113.7"}]),
        ("UPSERT", "*.pds.example.com", "A", 60, [{"Value": "203.0.113.7"}]),
    ]


NAMES = ["pds.example.com", "*.pds.example.com"]
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (None, "no certificate yet"),
        (CertificateState(NOW + timedelta(days=60), frozenset(NAMES)), None),
        (CertificateState(NOW + timedelta(days=29), frozenset(NAMES)), "days left"),
        (CertificateState(NOW + timedelta(days=60), frozenset(NAMES[:1])), "covers"),
    ],
)
def test_a_certificate_is_requested_only_when_missing_expiring_or_for_other_names(
    state: CertificateState | None, reason: str | None
) -> None:
    found = needs_certificate(state, NAMES, NOW)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_certbot_asks_for_the_wildcard_with_dns01_on_route53() -> None:
    settings = Settings(Path("/pds"), "pds.example.com", "https://acme.example/dir", "", "")
    argv = certbot_command(settings, Path("/c"), Path("/w"))
    assert "--dns-route53" in argv and "--register-unsafely-without-email" in argv
    domains = [argv[i + 1] for i, a in enumerate(argv) if a == "-d"]
    assert domains == NAMES
    assert argv[argv.index("--server") + 1] == "https://acme.example/dir"
    with_email = Settings(Path("/pds"), "pds.example.com", "https://a/d", "ops@example.com", "")
    assert "ops@example.com" in certbot_command(with_email, Path("/c"), Path("/w"))


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("tls/live/fullchain.pem", FileKind.TLS_FILE),
        (
            "tls/account/accounts/acme-v02.api.letsencrypt.org/directory/abc/private_key.json",
            FileKind.TLS_FILE,
        ),
        (
            "tls/caddy/certificates/local/wildcard_.pds.test/wildcard_.pds.test.crt",
            FileKind.TLS_FILE,
        ),
        ("tls/caddy/locks/issue_cert_x.lock", None),
        ("tls/live/.fullchain.pem.tmp", None),
    ],
)
def test_tls_files_are_backed_up_like_key_files(rel: str, kind: FileKind | None) -> None:
    found = classify(rel)
    assert (found.kind if found else None) is kind
    if found is not None:
        assert found.is_plain_file and found.did is None


def test_edge_kind_is_validated_with_a_message_naming_the_key(config_factory: Any) -> None:
    with pytest.raises(ConfigError, match=r"edge\.kind = 'nlb'"):
        config_factory(edge={"kind": "nlb"})
    with pytest.raises(ConfigError, match=r"edge\.acme_directory"):
        config_factory(edge={"kind": "direct", "acme_directory": "http://insecure"})
