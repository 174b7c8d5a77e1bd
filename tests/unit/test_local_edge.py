"""The local edge is as strict as the ALB: dot-segments refused, raw path, Host and client
address forwarded, and a websocket answered 101 only once the PDS has accepted it.

Each case runs the edge (pds_aws.local.proxy.build_app) in front of an aiohttp test server
that records what reaches it. Requests with dot-segments are written as raw bytes on a socket:
HTTP clients normalize `/xrpc/../admin` before sending it, an attacker does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from pds_aws.local import proxy as local_proxy

Seen = list[dict[str, Any]]


def upstream_app(seen: Seen) -> web.Application:
    """A stand-in PDS: records each request; /xrpc/echo is a websocket echo, /xrpc/refuse
    refuses the upgrade as the PDS does for an unknown subscription."""

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(
            {
                "raw_path": request.raw_path,
                "host": request.headers.get("Host"),
                "xff": request.headers.get("X-Forwarded-For"),
                "upgrade": request.headers.get("Upgrade"),
            }
        )
        if request.path == "/xrpc/echo":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str("echo:" + msg.data)
            return ws
        if request.path == "/xrpc/refuse":
            return web.json_response({"error": "MethodNotImplemented"}, status=404)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


@asynccontextmanager
async def edge_in_front(seen: Seen) -> AsyncIterator[TestServer]:
    async with TestServer(upstream_app(seen)) as pds:
        edge = TestServer(local_proxy.build_app(str(pds.make_url(""))))
        async with edge:
            yield edge


async def raw_request(edge: TestServer, target: str, host: str = "pds.test") -> int:
    """Send `GET target` exactly as written; the status code of the answer."""
    reader, writer = await asyncio.open_connection(edge.host, edge.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "target",
    [
        "/xrpc/../admin",
        "/xrpc/%2e%2e/x",
        "/xrpc/%2E%2E/x",
        "/xrpc/.%2e/x",
        "/xrpc/./com.atproto.server.describeServer",
        "/xrpc/..",
        "/xrpc/a%2fb",
        "/xrpc/..%2Fadmin",
        "/xrpc/a%5c..%5cadmin",
        "/xrpc/a\\..\\admin",
        "/.well-known/../../etc/passwd",
    ],
)
def test_dot_segments_and_encoded_slashes_get_403_and_never_reach_the_pds(target: str) -> None:
    """The ALB's allow-list matches `/xrpc/*`; a path that climbs out of it after decoding must
    not reach the PDS (express decodes and resolves it to another route)."""

    async def scenario() -> None:
        seen: Seen = []
        async with edge_in_front(seen) as edge:
            assert await raw_request(edge, target) == 403
            assert await raw_request(edge, "/xrpc/_health") == 200
        assert [s["raw_path"] for s in seen] == ["/xrpc/_health"]

    run(scenario)


def test_rejected_path_reasons() -> None:
    assert local_proxy.rejected_path("/xrpc/com.atproto.sync.getRepo?did=did%3Aplc%3Aa") is None
    assert local_proxy.rejected_path("/xrpc/a..b/c.d?x=..") is None  # dots inside a segment
    assert "dot-segment" in (local_proxy.rejected_path("/xrpc/%2e%2E/admin") or "")
    assert "encoded slash" in (local_proxy.rejected_path("/xrpc/a%2Fb") or "")
    assert local_proxy.rejected_path("http://other/xrpc/x") is not None  # absolute form


def test_raw_path_host_and_client_address_are_forwarded() -> None:
    """The ALB forwards the path as received, keeps the Host header (handles resolve on their
    own subdomain: /.well-known/atproto-did on alice.<domain>) and appends the client address
    to X-Forwarded-For (its default `append` mode; Elastic Load Balancing user guide, "HTTP
    headers and Application Load Balancers")."""

    async def scenario() -> None:
        seen: Seen = []
        async with edge_in_front(seen) as edge:
            target = "/xrpc/com.atproto.repo.getRecord?repo=did%3Aplc%3Aabc&rkey=a%20b"
            assert await raw_request(edge, target, host="alice.pds.test") == 200
            async with aiohttp.ClientSession() as client:
                answer = await client.get(
                    edge.make_url("/.well-known/atproto-did"),
                    headers={"Host": "bob.pds.test", "X-Forwarded-For": "203.0.113.9"},
                )
                assert answer.status == 200
        assert seen[0]["raw_path"] == target
        assert seen[0]["host"] == "alice.pds.test"
        assert seen[0]["xff"] == "127.0.0.1"
        assert seen[1]["host"] == "bob.pds.test"
        assert seen[1]["xff"] == "203.0.113.9, 127.0.0.1"

    run(scenario)


def test_websocket_gets_101_only_after_the_pds_accepts() -> None:
    async def scenario() -> None:
        seen: Seen = []
        async with edge_in_front(seen) as edge, aiohttp.ClientSession() as client:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(edge.make_url("/xrpc/refuse"))
            assert refused.value.status == 404  # the PDS's answer, not a 101 then a close
            async with client.ws_connect(edge.make_url("/xrpc/echo")) as ws:
                await ws.send_str("hello")
                reply = await ws.receive(timeout=10)
                assert (reply.type, reply.data) == (WSMsgType.TEXT, "echo:hello")
        assert [s["upgrade"] for s in seen] == ["websocket", "websocket"]

    run(scenario)


def test_websocket_to_an_unreachable_pds_gets_502() -> None:
    async def scenario() -> None:
        async with TestServer(web.Application()) as gone:
            url = str(gone.make_url(""))
        async with (
            TestServer(local_proxy.build_app(url)) as edge,
            aiohttp.ClientSession() as client,
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(edge.make_url("/xrpc/com.atproto.sync.subscribeRepos"))
            assert refused.value.status == 502

    run(scenario)
