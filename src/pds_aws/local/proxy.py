"""The local stand-in for the ALB: the PDS route table in front of the PDS.

Requests are routed by `pds_aws.routes.route`, the same table the ALB listener rules are
built from: PDS paths go to the PDS (websockets included, e.g. subscribeRepos),
`/robots.txt` gets the disallow-all answer, everything else 403.

Run: python -m pds_aws.local.proxy --port PORT --upstream http://127.0.0.1:PDS_PORT
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import WSMsgType, web

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
        "host",
    }
)
UPSTREAM_KEY = web.AppKey("upstream", str)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)


def _forward_headers(headers: aiohttp.typedefs.LooseHeaders) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k.lower() not in _HOP_BY_HOP}


async def _proxy_websocket(request: web.Request) -> web.WebSocketResponse:
    session = request.app[SESSION_KEY]
    upstream = request.app[UPSTREAM_KEY].replace("http", "ws", 1) + request.path_qs
    downstream = web.WebSocketResponse(autoping=True)
    await downstream.prepare(request)
    async with session.ws_connect(upstream, headers=_forward_headers(request.headers)) as up:

        async def pump_up() -> None:
            async for msg in downstream:
                if msg.type == WSMsgType.TEXT:
                    await up.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await up.send_bytes(msg.data)
            await up.close()

        async def pump_down() -> None:
            async for msg in up:
                if msg.type == WSMsgType.TEXT:
                    await downstream.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await downstream.send_bytes(msg.data)
            await downstream.close()

        tasks = [asyncio.create_task(pump_up()), asyncio.create_task(pump_down())]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    return downstream


async def handle(request: web.Request) -> web.StreamResponse:
    target = route(request.path)
    if target is Route.ROBOTS:
        return web.Response(text=ROBOTS_TXT, content_type="text/plain")
    if target is Route.DENIED:
        return web.Response(status=403, text=DENIED_BODY, content_type="text/plain")
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _proxy_websocket(request)
    session = request.app[SESSION_KEY]
    headers = _forward_headers(request.headers)
    headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
    headers["X-Forwarded-Proto"] = "http"
    async with session.request(
        request.method,
        request.app[UPSTREAM_KEY] + request.path_qs,
        headers=headers,
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
