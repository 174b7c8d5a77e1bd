"""The local stand-in for the ALB: the PDS route table in front of the PDS.

Requests are routed by `pds_aws.routes.route`, the same table the ALB listener rules are
built from: PDS paths go to the PDS (websockets included, e.g. subscribeRepos),
`/robots.txt` gets the disallow-all answer, everything else 403.

As strict as the ALB, and as transparent:
- a path with a dot-segment (`/xrpc/../admin`, `/xrpc/%2e%2e/x`) or an encoded slash or
  backslash gets 403: the allow-list matches the path as sent, and the PDS (express) would
  decode and resolve it to a path outside the list;
- the path is forwarded as received (raw), with the client's Host header (a handle resolves
  on its own subdomain: `/.well-known/atproto-did` on `alice.<domain>`), and the client's
  address appended to X-Forwarded-For (the ALB's default `append` mode), which the PDS's rate
  limits key on;
- a websocket is answered 101 only once the PDS has accepted it; otherwise the client gets
  the PDS's own answer (or 502 when the PDS is unreachable). Frames, pings and pongs pass
  through both ways, so an idle connection behaves as it does behind the ALB.

Run: python -m pds_aws.local.proxy --port PORT --upstream http://127.0.0.1:PDS_PORT
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from urllib.parse import unquote

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from pds_aws.routes import DENIED_BODY, ROBOTS_TXT, Route, route

# Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded; the proxy sets its own.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# The websocket handshake is made anew upstream (its key, version and extensions).
_WEBSOCKET_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
UPSTREAM_KEY = web.AppKey("upstream", str)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def _forward_headers(headers: aiohttp.typedefs.LooseHeaders) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k.lower() not in _HOP_BY_HOP}


def rejected_path(raw_path: str) -> str | None:
    """Why the edge refuses this request target (path as sent), or None to route it."""
    path = raw_path.split("?", 1)[0]
    if not path.startswith("/"):
        return "not an origin-form path"
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered or "\\" in path:
        return "encoded slash or backslash in the path"
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return "dot-segment in the path"
    return None


def _upstream_headers(request: web.Request) -> dict[str, str]:
    """The client's headers as the ALB passes them on: Host kept, X-Forwarded-* added."""
    headers = _forward_headers(request.headers)
    client = request.remote or "127.0.0.1"
    forwarded = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
    headers["X-Forwarded-Proto"] = "http"
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if sockname:
        headers["X-Forwarded-Port"] = str(sockname[1])
    return headers


def _upstream_url(request: web.Request, scheme: str = "") -> URL:
    base = request.app[UPSTREAM_KEY]
    if scheme:
        base = scheme + base.split("://", 1)[1]
    # encoded=True: the path goes upstream byte for byte, as the client sent it.
    return URL(base + request.raw_path, encoded=True)


async def _relay(
    source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
) -> None:
    """Pass frames, pings and pongs from `source` to `sink`; then close `sink` alike."""
    async for msg in source:
        if msg.type == WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.PING:
            await sink.ping(msg.data)
        elif msg.type == WSMsgType.PONG:
            await sink.pong(msg.data)
    code = source.close_code or aiohttp.WSCloseCode.OK
    await sink.close(code=code)


async def _proxy_websocket(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION_KEY]
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    headers = {
        k: v for k, v in _upstream_headers(request).items() if k.lower() not in _WEBSOCKET_HANDSHAKE
    }
    # The PDS first: the client gets 101 only if the PDS accepts (as behind the ALB).
    try:
        up = await session.ws_connect(
            _upstream_url(request, "ws://"),
            headers=headers,
            protocols=protocols,
            autoping=False,
            max_msg_size=0,
        )
    except aiohttp.WSServerHandshakeError as exc:
        return web.Response(status=exc.status or 502, text=exc.message, content_type="text/plain")
    except (aiohttp.ClientError, OSError) as exc:
        return web.Response(status=502, text=f"upstream unreachable: {exc}")
    async with up:
        downstream = web.WebSocketResponse(
            autoping=False, max_msg_size=0, protocols=[up.protocol] if up.protocol else ()
        )
        await downstream.prepare(request)
        tasks = [
            asyncio.create_task(_relay(downstream, up)),
            asyncio.create_task(_relay(up, downstream)),
        ]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await downstream.close()
    return downstream


async def handle(request: web.Request) -> web.StreamResponse:
    if rejected_path(request.raw_path) is not None:
        return web.Response(status=403, text=DENIED_BODY, content_type="text/plain")
    target = route(request.raw_path)
    if target is Route.ROBOTS:
        return web.Response(text=ROBOTS_TXT, content_type="text/plain")
    if target is Route.DENIED:
        return web.Response(status=403, text=DENIED_BODY, content_type="text/plain")
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _proxy_websocket(request)
    session = request.app[SESSION_KEY]
    async with session.request(
        request.method,
        _upstream_url(request),
        headers=_upstream_headers(request),
        data=request.content if request.body_exists else None,
        allow_redirects=False,
        auto_decompress=False,
    ) as upstream:
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=_forward_headers(upstream.headers),
        )
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


def build_app(upstream: str) -> web.Application:
    """The edge as an aiohttp application proxying to `upstream` (the PDS)."""
    app = web.Application(client_max_size=0)
    app[UPSTREAM_KEY] = upstream.rstrip("/")

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        # No total timeout: subscribeRepos streams for as long as the client listens.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[SESSION_KEY] = session
            yield

    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve(port: int, upstream: str) -> None:
    runner = web.AppRunner(build_app(upstream), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"edge listening on http://127.0.0.1:{port} -> {upstream}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pds_aws.local.proxy")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
