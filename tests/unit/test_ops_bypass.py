"""Operator tools carry the PDS's rate-limit bypass key, taken from the target, never shown."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pds_aws.names import RATE_LIMIT_BYPASS_HEADER, LocalState
from pds_aws.ops.smoke import http_get
from pds_aws.ops.target import OUTPUT_BYPASS_SECRET, local_target, stack_target
from pds_aws.ops.xrpc import Xrpc

KEY = "k" * 48


@pytest.fixture
def seen_headers() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A tiny HTTP server answering `{}` and recording each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = json.dumps({"version": "0.5.26"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_xrpc_sends_the_key_only_when_it_has_one(
    seen_headers: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = seen_headers
    Xrpc(url, rate_limit_bypass_key=KEY).query("_health")
    Xrpc(url).query("_health")
    assert seen[0][RATE_LIMIT_BYPASS_HEADER] == KEY
    assert RATE_LIMIT_BYPASS_HEADER not in seen[1]
    assert KEY not in repr(Xrpc(url, "admin-pw", rate_limit_bypass_key=KEY))


def test_smoke_get_can_carry_the_key(seen_headers: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = seen_headers
    assert http_get(url + "/x", headers={RATE_LIMIT_BYPASS_HEADER: KEY}).status == 200
    assert seen[0][RATE_LIMIT_BYPASS_HEADER] == KEY


def test_targets_carry_the_key_without_showing_it() -> None:
    local = local_target(
        LocalState.from_json(
            {"url": "http://127.0.0.1:1", "admin_password": "pw", "rate_limit_bypass_key": KEY}
        )
    )
    assert local.rate_limit_bypass_key == KEY
    assert KEY not in repr(local)
    older = local_target(
        LocalState.from_json({"url": "http://127.0.0.1:1", "admin_password": "pw"})
    )
    assert older.rate_limit_bypass_key is None
    outputs = {"Url": "https://pds.example.com", "AdminPasswordSecretArn": "arn:a"}
    deployed = stack_target("S", "us-east-2", outputs, "pw", rate_limit_bypass_key=KEY)
    assert deployed.rate_limit_bypass_key == KEY
    assert OUTPUT_BYPASS_SECRET == "RateLimitBypassSecretArn"


def test_smoke_and_doctor_probes_carry_the_target_s_key(
    seen_headers: tuple[str, list[dict[str, str]]],
) -> None:
    from pds_aws.doctor.checks import Doctor
    from pds_aws.ops.smoke import probe_with_key

    url, seen = seen_headers
    assert probe_with_key(url, KEY).fetch("/xrpc/_health").status == 200
    assert probe_with_key(url, None).fetch("/xrpc/_health").status == 200
    target = stack_target(
        "S",
        "us-east-2",
        {"Url": url, "AdminPasswordSecretArn": "arn:a"},
        "pw",
        rate_limit_bypass_key=KEY,
    )
    doctor = Doctor(
        target=target,
        domain="pds.example.com",
        hosted_zone="example.com",
        region="us-east-2",
        relays=[],
    )
    assert doctor.probe.fetch("/xrpc/_health").status == 200
    assert [h.get(RATE_LIMIT_BYPASS_HEADER) for h in seen] == [KEY, None, KEY]
    assert KEY not in repr(probe_with_key(url, KEY))
