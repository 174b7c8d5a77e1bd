"""The smoke checks' verdicts: each one passes on the right answer and fails on a wrong one."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable

import pytest

from pds_aws.ops import smoke
from pds_aws.ops.smoke import CheckFailed, HttpResponse, Probe
from pds_aws.routes import ROBOTS_TXT, Route, route


def response(status: int, body: str | dict[str, object] = "") -> HttpResponse:
    raw = json.dumps(body) if isinstance(body, dict) else body
    return HttpResponse(status, {}, raw.encode())


GOOD = {
    "/": response(200, "This is an AT Protocol Personal Data Server (aka, an atproto PDS)"),
    "/robots.txt": response(200, ROBOTS_TXT),
    "/xrpc/_health": response(200, {"version": "0.5.26"}),
    "/.well-known/oauth-protected-resource": response(
        200, {"resource": "https://pds.example.com", "authorization_servers": ["https://x"]}
    ),
    "/.well-known/oauth-authorization-server": response(
        200, {"issuer": "https://x", "authorization_endpoint": "a", "token_endpoint": "t"}
    ),
    "/.well-known/atproto-did": response(404, {"error": "NotFound"}),
    "/xrpc/com.atproto.server.describeServer": response(
        200, {"did": "did:web:pds.example.com", "availableUserDomains": [".pds.example.com"]}
    ),
    "/xrpc/com.atproto.sync.listRepos": response(200, {"repos": []}),
    "/xrpc/com.atproto.sync.listRepos?limit=1": response(200, {"repos": []}),
    smoke.ADMIN_PROBE_PATH: response(401, {"error": "AuthMissing"}),
    smoke.DENIED_PROBE_PATH: response(403, "Forbidden"),
}

# What a PDS answers without the edge in front of it, and other wrong answers.
BAD: dict[str, HttpResponse] = {
    "/": response(503, "Service Unavailable"),
    "/robots.txt": response(200, "# Hello!\nUser-agent: *\nAllow: /\n"),
    "/xrpc/_health": response(200, {"status": "ok"}),
    "/.well-known/oauth-protected-resource": response(404, "Not Found"),
    "/.well-known/oauth-authorization-server": response(200, {"issuer": "https://x"}),
    "/.well-known/atproto-did": response(200, "did:plc:abc"),
    "/xrpc/com.atproto.server.describeServer": response(200, "<html>"),
    "/xrpc/com.atproto.sync.listRepos": response(200, {"cursor": "x"}),
    smoke.ADMIN_PROBE_PATH: response(200, {"infos": []}),
    smoke.DENIED_PROBE_PATH: response(404, "Not Found"),
}


def probe_with(answers: dict[str, HttpResponse], frame: bytes | None = None) -> Probe:
    base = "https://pds.example.com"

    def get(url: str) -> HttpResponse:
        return answers[url.removeprefix(base)]

    return Probe(base, get=get, frame=lambda _url: frame)


HTTP_CHECKS = [c for c in smoke.SMOKE_CHECKS if not c.needs_account and "websocket" not in c.name]


def test_every_public_check_passes_on_good_answers() -> None:
    results = smoke.run_checks(probe_with(GOOD))
    assert [r.name for r in results] == [c.name for c in smoke.SMOKE_CHECKS if not c.needs_account]
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]


@pytest.mark.parametrize("path", sorted(BAD))
def test_each_http_check_fails_on_a_wrong_answer(path: str) -> None:
    results = smoke.run_checks(probe_with({**GOOD, path: BAD[path]}))
    failed = [r for r in results if not r.passed]
    assert len(failed) == 1, [r.line() for r in results]
    assert failed[0].line().startswith("FAIL")


def test_an_unreachable_pds_fails_every_check_without_stopping() -> None:
    def get(url: str) -> HttpResponse:
        raise CheckFailed(f"no answer from {url}")

    results = smoke.run_checks(Probe("http://127.0.0.1:9", get=get, frame=lambda _u: None))
    assert len(results) == len(HTTP_CHECKS) + 1
    assert not any(r.passed for r in results)


def test_account_checks_run_only_with_credentials() -> None:
    names = {r.name for r in smoke.run_checks(probe_with(GOOD))}
    assert "write path" not in names
    probe = probe_with(GOOD)
    probe.handle, probe.password = "alice.test", "secret"
    probe.get = lambda url: (_ for _ in ()).throw(CheckFailed("down"))
    results = {r.name: r for r in smoke.run_checks(probe)}
    assert not results["read path"].passed
    assert "not logged in" in results["read path"].detail


def _frame(header: dict[str, object], body: dict[str, object]) -> bytes:
    import libipld

    return bytes(libipld.encode_dag_cbor(header)) + bytes(libipld.encode_dag_cbor(body))


def test_websocket_frame_verdicts() -> None:
    good = _frame({"op": 1, "t": "#identity"}, {"seq": 1, "did": "did:plc:x", "time": "t"})
    assert "#identity" in smoke.verify_frame(good, repo_count=1)
    error = _frame({"op": -1}, {"error": "FutureCursor", "message": "m"})
    with pytest.raises(CheckFailed, match="error frame"):
        smoke.verify_frame(error, repo_count=1)
    with pytest.raises(CheckFailed, match="does not decode"):
        smoke.verify_frame(b"\xff\x00garbage", repo_count=1)
    with pytest.raises(CheckFailed, match="no frame"):
        smoke.verify_frame(None, repo_count=3)
    assert "no events" in smoke.verify_frame(None, repo_count=0)


def test_probe_paths_match_the_route_table() -> None:
    assert route(smoke.DENIED_PROBE_PATH) is Route.DENIED
    assert route(smoke.ADMIN_PROBE_PATH) is Route.PDS
    assert route(smoke.SUBSCRIBE_REPOS_PATH) is Route.PDS


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://pds.example.com", "wss://pds.example.com/xrpc/x?cursor=0"),
        ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/xrpc/x?cursor=0"),
    ],
)
def test_websocket_url(base: str, expected: str) -> None:
    assert smoke.websocket_url(base, "/xrpc/x?cursor=0") == expected


def test_tiny_png_is_a_valid_png() -> None:
    png = smoke.tiny_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    offset, kinds = 8, []
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data)
        kinds.append(kind)
        offset += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


Verdict = Callable[[HttpResponse], str]


@pytest.mark.parametrize(
    "verify", [smoke.verify_health, smoke.verify_describe_server, smoke.verify_protected_resource]
)
def test_json_checks_fail_on_non_json(verify: Verdict) -> None:
    with pytest.raises(CheckFailed, match="not JSON"):
        verify(response(200, "<html>oops</html>"))
