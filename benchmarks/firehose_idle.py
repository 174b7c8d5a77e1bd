"""What an idle firehose websocket carries: the figure the ALB idle timeout is chosen from.

The ALB closes a connection on which no data has moved, in either direction, for its idle
timeout; it must also stay below the PDS's HTTP keep-alive (`server.keepAliveTimeout = 90_000`
in @atproto/pds dist/index.js), or it reuses connections the PDS has closed (sporadic 502s).
So the question is: does the PDS itself keep an idle subscribeRepos alive? Its source says
no: @atproto/xrpc-server's XrpcStreamServer sends only the frames the handler yields, with no
heartbeat, and subscribeRepos yields only sequenced events. The relay keeps the socket busy
instead: bluesky-social/indigo cmd/relay/stream/consumer.go (HandleRepoStream) sends a
websocket ping every 30 s, which the PDS's `ws` server answers with a pong.

This script measures both on the real local runtime (the synthesized task, @atproto/pds on
Node 24), with an idle PDS (no writes):

1. "silent" client: subscribeRepos with no pings of its own, for WINDOW seconds: every frame,
   ping or close that arrives from the PDS is counted and timed;
2. "relay-like" client: the same with a ping every PING_EVERY seconds: pongs and their
   round trips are counted.

Both talk straight to the PDS's port (the edge proxy answers pings itself, which would hide
the PDS's behaviour).

    .venv/bin/python benchmarks/firehose_idle.py --window 150 --ping-every 30 \
        --json .local/benchmarks/firehose_idle.json --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from pds_aws.config import load_config
from pds_aws.infra.synth import synthesize
from pds_aws.local.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- firehose-idle:begin (benchmarks/firehose_idle.py writes this section) -->"
END = "<!-- firehose-idle:end -->"
SUBSCRIBE_PATH = "/xrpc/com.atproto.sync.subscribeRepos"
# The relay's ping interval (bluesky-social/indigo cmd/relay/stream/consumer.go).
RELAY_PING_SECONDS = 30.0


async def watch(url: str, window: float, ping_every: float | None) -> dict[str, Any]:
    """Hold one subscribeRepos open for `window` seconds and record what the PDS sends."""
    frames: list[float] = []
    server_pings: list[float] = []
    pongs: list[float] = []
    round_trips: list[float] = []
    closed_at: float | None = None
    close_code: int | None = None
    pings_sent = 0
    # autoping off and no heartbeat: every control frame from the PDS reaches us, and we send
    # none unless asked to.
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, autoping=False, heartbeat=None) as ws,
    ):
        t0 = time.monotonic()
        # Pings only while a pong can still arrive inside the window.
        last_ping_at = t0 + window - 5.0
        next_ping = t0 + ping_every if ping_every else None
        ping_sent_at: float | None = None
        while (now := time.monotonic()) < t0 + window:
            deadline = t0 + window
            if next_ping is not None and next_ping <= last_ping_at:
                deadline = min(deadline, next_ping)
            try:
                msg = await ws.receive(timeout=max(0.01, deadline - now))
            except TimeoutError:
                if next_ping is not None and last_ping_at >= time.monotonic() >= next_ping:
                    await ws.ping(b"relay-like")
                    pings_sent += 1
                    ping_sent_at = time.monotonic()
                    next_ping += ping_every or 0
                continue
            at = time.monotonic() - t0
            if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                frames.append(at)
            elif msg.type == aiohttp.WSMsgType.PING:
                server_pings.append(at)
                await ws.pong(msg.data)
            elif msg.type == aiohttp.WSMsgType.PONG:
                pongs.append(at)
                if ping_sent_at is not None:
                    round_trips.append((time.monotonic() - ping_sent_at) * 1000)
                    ping_sent_at = None
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                closed_at, close_code = at, ws.close_code
                break
    return {
        "window_s": window,
        "client_ping_every_s": ping_every,
        "frames_from_pds": len(frames),
        "frame_times_s": [round(t, 1) for t in frames],
        "pings_from_pds": len(server_pings),
        "pings_sent": pings_sent,
        "pongs_from_pds": len(pongs),
        "pong_round_trip_ms_max": round(max(round_trips), 1) if round_trips else None,
        "closed_by_pds_after_s": round(closed_at, 1) if closed_at is not None else None,
        "close_code": close_code,
        "longest_silence_from_pds_s": round(
            longest_gap([*frames, *server_pings, *pongs], closed_at or window), 1
        ),
    }


def longest_gap(times: list[float], end: float) -> float:
    """The longest stretch of the window with nothing at all from the PDS."""
    marks = [0.0, *sorted(times), end]
    return max(b - a for a, b in itertools.pairwise(marks))


def run(window: float, ping_every: float) -> dict[str, Any]:
    config = load_config(ROOT / "pds.example.toml")
    template = synthesize(config)
    with tempfile.TemporaryDirectory(prefix="pds-firehose-idle-") as tmp:
        runtime = LocalRuntime(Path(tmp), config, template=template)
        state = runtime.start()
        try:
            url = state.pds_url.replace("http://", "ws://") + SUBSCRIBE_PATH

            async def both() -> list[dict[str, Any]]:
                return list(
                    await asyncio.gather(watch(url, window, None), watch(url, window, ping_every))
                )

            silent, relay_like = asyncio.run(both())
        finally:
            runtime.stop()
    return {
        "silent": silent,
        "relay_like": relay_like,
        "pds_version": state.pds_version,
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 1),
        },
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def section(result: dict[str, Any], command: str) -> str:
    silent, relay = result["silent"], result["relay_like"]
    m = result["machine"]

    def closed(case: dict[str, Any]) -> str:
        after = case["closed_by_pds_after_s"]
        return "no" if after is None else f"after {after} s (code {case['close_code']})"

    return "\n".join(
        [
            BEGIN,
            "## Idle firehose websocket (what the ALB idle timeout is chosen from)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {m['cpus']} cores, `uname -m` = {m['arch']}, 1-min load average "
            f"{m['load_avg_1m_at_end']:.1f} at the end; @atproto/pds {result['pds_version']} on "
            f"Node 24, the local runtime, no writes. Measured {result['measured_at']}.",
            "",
            "| client on an idle subscribeRepos | window | frames from the PDS | pings from the "
            "PDS | pongs to our pings | longest silence from the PDS | closed by the PDS |",
            "|---|---|---|---|---|---|---|",
            f"| sends nothing | {silent['window_s']:.0f} s | {silent['frames_from_pds']} "
            f"| {silent['pings_from_pds']} | - | {silent['longest_silence_from_pds_s']} s "
            f"| {closed(silent)} |",
            f"| pings every {relay['client_ping_every_s']:.0f} s, as the relay does "
            f"| {relay['window_s']:.0f} s | {relay['frames_from_pds']} "
            f"| {relay['pings_from_pds']} | {relay['pongs_from_pds']} of {relay['pings_sent']} "
            f"(max round trip {relay['pong_round_trip_ms_max']} ms) "
            f"| {relay['longest_silence_from_pds_s']} s | {closed(relay)} |",
            "",
            "Reading: the PDS sends nothing on an idle firehose (no frames, no pings; "
            "@atproto/xrpc-server has no heartbeat) and does not close it either. What keeps "
            "the connection alive through a load balancer is the subscriber's own pings: the "
            f"relay pings every {RELAY_PING_SECONDS:.0f} s (bluesky-social/indigo "
            "cmd/relay/stream/consumer.go) and the PDS answers each. An idle timeout above "
            f"{RELAY_PING_SECONDS:.0f} s keeps the relay's connection open, and one below the "
            "PDS's 90 s keep-alive avoids reused closed connections.",
            END,
        ]
    )


def write_section(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        current = before + text + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--window", type=float, default=150.0, help="seconds per client")
    parser.add_argument("--ping-every", type=float, default=RELAY_PING_SECONDS)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--write", type=Path, help="replace this script's section of this file")
    parser.add_argument("--from-json", type=Path, help="render an earlier result")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        result = run(args.window, args.ping_every)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write:
        command = (
            f".venv/bin/python benchmarks/firehose_idle.py --window {args.window:g} "
            f"--ping-every {args.ping_every:g}"
        )
        write_section(args.write, section(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
