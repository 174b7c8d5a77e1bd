"""Memory and CPU of the Fargate task's two containers (pds, backup) under a PDS-sized load.

Runs the local runtime (the real @atproto/pds on Node 24 and the real backup sidecar with
Litestream, from the synthesized task definition; moto as S3/KMS/Secrets Manager), creates
ACCOUNTS accounts and drives them with the real `atproto` client while a firehose consumer
(what a relay does) reads subscribeRepos. It samples /proc once a second for each container's
process tree and prints the figures the default task size is chosen from (see BENCHMARKS.md).

    .venv/bin/python benchmarks/task_size.py --accounts 20 --active-seconds 120 --burst-seconds 30

Phases: idle (started, no traffic), signup (accounts created one after another), active (each
account does one action every --think-seconds: posts, image posts, likes, follows, reads),
burst (every account as fast as it can: the peak), idle again.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_aws.config import Config, load_config
from pds_aws.local.runtime import LocalRuntime
from pds_aws.names import RATE_LIMIT_BYPASS_HEADER

CONTAINERS = ("pds", "backup")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- /proc sampling (pure parsing separate from reading) ------------------------------------


def parse_stat(text: str) -> tuple[int, int]:
    """(parent pid, utime + stime ticks) from /proc/PID/stat text."""
    rest = text[text.rindex(")") + 2 :].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])


def parse_status_kib(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, cpu ticks, RSS KiB) of every live process."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid, ticks = parse_stat(Path(f"/proc/{entry}/stat").read_text())
            rss = parse_status_kib(Path(f"/proc/{entry}/status").read_text(), "VmRSS")
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry)] = (ppid, ticks, rss)
    return table


def tree(root: int, table: dict[int, tuple[int, int, int]]) -> list[int]:
    pids, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        pids += children
        frontier += children
    return [pid for pid in pids if pid in table]


@dataclass
class Sample:
    t: float
    phase: str
    rss_mib: dict[str, float]
    cpu_ticks: dict[str, int]


@dataclass
class Sampler:
    roots: dict[str, int]
    phase: str = "idle"
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            table = process_table()
            rss: dict[str, float] = {}
            ticks: dict[str, int] = {}
            for name, root in self.roots.items():
                pids = tree(root, table)
                rss[name] = sum(table[p][2] for p in pids) / 1024
                ticks[name] = sum(table[p][1] for p in pids)
            self.samples.append(Sample(time.monotonic(), self.phase, rss, ticks))
            self.stop.wait(1.0)


def summarize(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per phase: peak and mean RSS (MiB) of the task, CPU as fractions of one core."""
    out: dict[str, dict[str, float]] = {}
    phases = list(dict.fromkeys(s.phase for s in samples))
    for phase in phases:
        rows = [s for s in samples if s.phase == phase]
        task_rss = [sum(s.rss_mib.values()) for s in rows]
        cpu = []
        for a, b in itertools.pairwise(rows):
            dt = b.t - a.t
            used = sum(b.cpu_ticks[n] - a.cpu_ticks.get(n, 0) for n in b.cpu_ticks) / CLK_TCK
            cpu.append(max(used, 0) / dt)
        result = {
            "seconds": rows[-1].t - rows[0].t,
            "task_rss_mib_peak": max(task_rss),
            "task_rss_mib_mean": statistics.fmean(task_rss),
            "cpu_mean": statistics.fmean(cpu) if cpu else 0.0,
            "cpu_p95": sorted(cpu)[int(0.95 * (len(cpu) - 1))] if cpu else 0.0,
            "cpu_max": max(cpu) if cpu else 0.0,
        }
        for name in CONTAINERS:
            result[f"{name}_rss_mib_peak"] = max(s.rss_mib.get(name, 0.0) for s in rows)
        out[phase] = result
    return out


# -- the load ------------------------------------------------------------------------------


def noise_png(side: int, seed: int) -> bytes:
    """A valid PNG of random pixels (incompressible, like a photo): side*side*3 bytes."""
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


@dataclass
class Account:
    handle: str
    password: str
    did: str = ""
    client: Any = None
    posts: list[Any] = field(default_factory=list)


@dataclass
class Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    ops: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def record(self, phase: str, op: str, started: float) -> None:
        with self.lock:
            self.ops[op] = self.ops.get(op, 0) + 1
            self.latency_ms.setdefault(phase, []).append((time.monotonic() - started) * 1000)


def operator_client(base_url: str, bypass_key: str) -> Any:
    """An atproto client carrying the PDS's rate-limit bypass key: the load comes from one
    address and exceeds the PDS's 3,000 requests per 5 minutes per address."""
    from atproto import Client

    client = Client(base_url=base_url)
    client.request.add_additional_header(RATE_LIMIT_BYPASS_HEADER, bypass_key)
    return client


def create_accounts(
    base_url: str, handle_domain: str, count: int, bypass_key: str
) -> list[Account]:
    from atproto import models

    accounts = []
    for n in range(count):
        account = Account(f"load{n}{handle_domain}", f"load-password-{n}-{random.random():.6f}")
        operator_client(f"{base_url}/xrpc", bypass_key).com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(
                handle=account.handle, email=f"load{n}@example.com", password=account.password
            )
        )
        client = operator_client(f"{base_url}/xrpc", bypass_key)
        session = client.login(account.handle, account.password, fetch_bsky_profile=False)
        del session
        client.update_base_url(f"{base_url}/xrpc")  # the DID document names the public host
        account.client = client
        account.did = str(client._session.did)
        accounts.append(account)
    return accounts


def act(account: Account, others: list[Account], rng: random.Random, image: bytes) -> str:
    client = account.client
    roll = rng.random()
    if roll < 0.40 or not account.posts:
        account.posts.append(
            client.send_post(text=f"post {rng.random()}", profile_identify=account.did)
        )
        return "post"
    if roll < 0.50:
        account.posts.append(
            client.send_image(
                text="a photo", image=image, image_alt="noise", profile_identify=account.did
            )
        )
        return "image_post"
    other = rng.choice(others)
    if roll < 0.75 and other.posts:
        from atproto import models

        target = rng.choice(other.posts)
        subject = models.ComAtprotoRepoStrongRef.Main(uri=target.uri, cid=target.cid)
        client.app.bsky.feed.like.create(
            account.did,
            models.AppBskyFeedLike.Record(
                subject=subject, created_at=client.get_current_time_iso()
            ),
        )
        return "like"
    if roll < 0.80:
        from atproto import models

        client.app.bsky.graph.follow.create(
            account.did,
            models.AppBskyGraphFollow.Record(
                subject=other.did, created_at=client.get_current_time_iso()
            ),
        )
        return "follow"
    client.com.atproto.repo.list_records(
        {"repo": other.did, "collection": "app.bsky.feed.post", "limit": 25}
    )
    return "read"


def drive(
    accounts: list[Account],
    seconds: float,
    think_seconds: float,
    phase: str,
    counters: Counters,
    image: bytes,
) -> None:
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        rng = random.Random(index)
        account = accounts[index]
        others = [a for a in accounts if a is not account]
        time.sleep(rng.uniform(0, think_seconds))  # stagger
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                op = act(account, others, rng, image)
                counters.record(phase, op, started)
            except Exception as exc:  # a failed request is a finding, not a crash of the run
                with counters.lock:
                    counters.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            if think_seconds:
                time.sleep(rng.uniform(0.5, 1.5) * think_seconds)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(accounts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def firehose(url: str, stop: threading.Event, frames: list[int]) -> None:
    """Consume subscribeRepos as a relay would."""
    import aiohttp

    async def consume() -> None:
        ws_url = url.replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
            while not stop.is_set():
                try:
                    message = await ws.receive(timeout=1.0)
                except TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    frames[0] += 1
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

    asyncio.run(consume())


def loaded_sqlite_modules(root: int) -> list[str]:
    """The better-sqlite3 native modules the PDS process tree has mapped (which copy runs)."""
    found: set[str] = set()
    for pid in tree(root, process_table()):
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        found |= {line.split()[-1] for line in maps.splitlines() if "sqlite3" in line}
    return sorted(found)


def benchmark_config(path: str) -> Config:
    config = load_config(path)
    # Sign-up without invite codes; nothing else differs from the task definition.
    return config.model_copy(
        update={"pds": config.pds.model_copy(update={"invite_required": False})}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="pds.example.toml")
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--active-seconds", type=float, default=120)
    parser.add_argument("--think-seconds", type=float, default=2.0)
    parser.add_argument("--burst-seconds", type=float, default=30)
    parser.add_argument(
        "--workdir", help="keep the runtime's files (logs) here; default: a temp dir"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = benchmark_config(args.config)
    load_before = os.getloadavg()
    image = noise_png(256, 1)  # ~197 KB
    counters = Counters()
    with tempfile.TemporaryDirectory(prefix="pds-task-size-") as scratch:
        workdir = args.workdir or scratch
        runtime = LocalRuntime(
            Path(workdir), config, progress=lambda m: print(f"==> {m}", file=sys.stderr)
        )
        state = runtime.start()
        try:
            roots = {name: state.pids[name] for name in CONTAINERS if name in state.pids}
            sampler = Sampler(roots)
            sampling = threading.Thread(target=sampler.run, daemon=True)
            sampling.start()
            stop_firehose = threading.Event()
            frames = [0]
            relay = threading.Thread(
                target=firehose, args=(state.url, stop_firehose, frames), daemon=True
            )
            relay.start()
            time.sleep(args.idle_seconds)
            sqlite_modules = loaded_sqlite_modules(roots.get("pds", 0))

            sampler.phase = "signup"
            started = time.monotonic()
            accounts = create_accounts(
                state.url, state.handle_domain, args.accounts, state.rate_limit_bypass_key
            )
            signup_seconds = time.monotonic() - started

            sampler.phase = "active"
            drive(accounts, args.active_seconds, args.think_seconds, "active", counters, image)
            sampler.phase = "burst"
            drive(accounts, args.burst_seconds, 0.0, "burst", counters, image)
            sampler.phase = "idle after"
            time.sleep(args.idle_seconds)
            sampler.stop.set()
            sampling.join()
            stop_firehose.set()
            relay.join(timeout=10)
            table = process_table()
            hwm = {
                name: sum(
                    parse_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmHWM")
                    for pid in tree(root, table)
                )
                / 1024
                for name, root in roots.items()
            }
        finally:
            runtime.stop(quiet=True)

    phases = summarize(sampler.samples)
    latency = {
        phase: {
            "p50_ms": statistics.median(values),
            "p95_ms": sorted(values)[int(0.95 * (len(values) - 1))],
            "ops_per_s": len(values)
            / (args.active_seconds if phase == "active" else args.burst_seconds),
        }
        for phase, values in counters.latency_ms.items()
    }
    report = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "accounts": args.accounts,
        "signup_seconds": signup_seconds,
        "ops": counters.ops,
        "errors": len(counters.errors),
        "first_errors": counters.errors[:3],
        "firehose_frames": frames[0],
        "pds_sqlite_modules": sqlite_modules,
        "main_process_peak_rss_mib": hwm,
        "phases": phases,
        "latency": latency,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("better-sqlite3 the PDS loaded:", ", ".join(sqlite_modules) or "?")
    print(
        f"machine: {report['machine']} (1-min load average {report['load_average_before_after']}"
        f" before/after); accounts: {args.accounts}; ops: {counters.ops}; "
        f"errors: {len(counters.errors)}; firehose frames: {frames[0]}"
    )
    print(
        "peak RSS per container, sum of VmHWM of its processes (MiB):",
        {k: round(v) for k, v in hwm.items()},
    )
    print(
        "| phase | seconds | task RSS peak (MiB) | pds / backup peak (MiB) | CPU mean | CPU p95 "
        "| CPU max | ops/s | p95 latency |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for phase, r in phases.items():
        lat = latency.get(phase, {})
        print(
            f"| {phase} | {r['seconds']:.0f} | {r['task_rss_mib_peak']:.0f} | "
            f"{r['pds_rss_mib_peak']:.0f} / {r['backup_rss_mib_peak']:.0f} | "
            f"{r['cpu_mean']:.2f} | {r['cpu_p95']:.2f} | {r['cpu_max']:.2f} | "
            f"{lat.get('ops_per_s', 0):.1f} | {lat.get('p95_ms', 0):.0f} ms |"
        )
    if counters.errors:
        print("first errors:", *counters.errors[:3], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
