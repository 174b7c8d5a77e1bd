"""The watchdog function's alarm path, against an HTTP stand-in for a relay and a PDS.

The stand-in answers with the lexicon's shapes (getHostStatus, getRepoStatus, requestCrawl,
listRepos); the integration test runs the real-firehose relay stand-in instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pds_aws.relay import watchdog

REV = "3m7xdbr5q5c2a"


class World:
    def __init__(self) -> None:
        self.host: dict[str, Any] | None = {"status": "active", "seq": 5, "accountCount": 1}
        self.repo: dict[str, Any] = {"active": True, "rev": REV}
        self.crawls: list[str] = []


@pytest.fixture
def world() -> Iterator[tuple[World, str]]:
    state = World()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            nsid = url.path.removeprefix("/xrpc/")
            if nsid == "com.atproto.sync.listRepos":
                self._json(200, {"repos": [{"did": "did:plc:a", "head": "c", "rev": REV}]})
            elif nsid == "com.atproto.sync.getHostStatus":
                if state.host is None:
                    self._json(400, {"error": "HostNotFound"})
                else:
                    self._json(200, {"hostname": query["hostname"], **state.host})
            elif nsid == "com.atproto.sync.getRepoStatus":
                self._json(200, {"did": query["did"], **state.repo})
            else:
                self._json(404, {"error": "NotFound"})

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.crawls.append(json.loads(self.rfile.read(length))["hostname"])
            self._json(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(base: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    for key, value in {
        "PDS_HOSTNAME": "pds.example.com",
        "PDS_URL": base,
        "RELAYS": base,
        "RELAY_ACCOUNT_LIMIT": "100",
        "RELAY_LAG_THRESHOLD_S": "600",
    }.items():
        monkeypatch.setenv(key, value)
    return watchdog.handler()


def test_a_healthy_host_passes(world: tuple[World, str], monkeypatch: pytest.MonkeyPatch) -> None:
    state, base = world
    counts = run(base, monkeypatch)
    assert counts["alarm"] == 0 and counts["ok"] >= 2
    assert state.crawls == []


def test_a_throttled_host_fails_the_run_so_the_errors_alarm_fires(
    world: tuple[World, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, base = world
    state.host = {"status": "throttled", "seq": 5, "accountCount": 1}
    with pytest.raises(watchdog.RelayAlarm, match="throttled"):
        run(base, monkeypatch)
    assert "ALARM relay:" in capsys.readouterr().out


def test_a_throttled_account_fails_the_run(
    world: tuple[World, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = world
    state.repo = {"active": False, "status": "throttled", "rev": REV}
    with pytest.raises(watchdog.RelayAlarm, match="did:plc:a"):
        run(base, monkeypatch)


def test_an_idle_host_is_crawled_again_and_an_unknown_one_too(
    world: tuple[World, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = world
    state.host = {"status": "idle", "seq": 5, "accountCount": 1}
    assert run(base, monkeypatch)["alarm"] == 0
    state.host = None
    with pytest.raises(watchdog.RelayAlarm, match="does not know"):
        run(base, monkeypatch)
    assert state.crawls == ["pds.example.com", "pds.example.com"]
