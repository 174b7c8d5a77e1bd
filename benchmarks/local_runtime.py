"""Local runtime figures: cold start, warm restart after a crash, createRecord latency, PDS load.

Everything is the real local runtime (pds_aws.local.runtime.LocalRuntime: the synthesized task
definition, @atproto/pds on Node 24, the backup sidecar with Litestream, moto, PLC, SMTP sink,
edge proxy) driven by the real `atproto` client through the edge.

    .venv/bin/python benchmarks/local_runtime.py --accounts 100 --posts 100 \
        --json .local/benchmarks/local_runtime.json --write BENCHMARKS.md

1. cold start: an empty work directory to `PDS ready` (template synthesized beforehand; the
   synthesis time is reported on its own);
2. ACCOUNTS accounts created through the edge, then POSTS sequential posts by one account:
   createRecord latency through the edge (p50/p95/max) while /proc is sampled for the PDS
   process (RSS, CPU);
3. the backup catches up, every process is SIGKILLed (a crashed task), and the warm restart
   to `PDS ready` (restore of ACCOUNTS + 3 databases and key files from the local S3) is timed;
   the last account logs in and finds its posts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from atproto import Client, models

from pds_aws.config import load_config
from pds_aws.infra.synth import synthesize
from pds_aws.local.runtime import LocalRuntime
from pds_aws.names import RATE_LIMIT_BYPASS_HEADER, LocalState

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- local-benchmarks:begin (benchmarks/local_runtime.py writes this section) -->"
END = "<!-- local-benchmarks:end -->"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench-pass-1234"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def cpu_ticks(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class ProcessSampler:
    """RSS of one process every `every` seconds; CPU from its tick counter over the window."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.rss: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss.append(rss_mib(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> ProcessSampler:
        self._ticks0, self._t0 = cpu_ticks(self.pid), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = (cpu_ticks(self.pid) - self._ticks0) / CLK_TCK
        self.wall_seconds = time.monotonic() - self._t0


def operator_client(url: str, state: LocalState) -> Client:
    """An atproto client carrying the PDS's rate-limit bypass key: the benchmark signs up more
    accounts from one address than the PDS allows a client (100 per 5 minutes)."""
    client = Client(url)
    client.request.add_additional_header(RATE_LIMIT_BYPASS_HEADER, state.rate_limit_bypass_key)
    return client


def backup_caught_up(runtime: LocalRuntime, since: str, databases: int) -> bool:
    done = subprocess.run(
        [str(runtime.paths.bin_dir / "pds-aws-backup"), "status"],
        env=runtime.container_envs["backup"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return False
    status = json.loads(done.stdout.strip().splitlines()[-1])
    newest = status.get("newest_change") or ""
    return bool(newest >= since and status.get("database_count", 0) >= databases)


def run(accounts: int, posts: int) -> dict[str, Any]:
    config = load_config(ROOT / "pds.example.toml")
    t0 = time.monotonic()
    template = synthesize(config)
    synth_s = time.monotonic() - t0
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="pds-local-bench-") as tmp:
        workdir = Path(tmp)
        runtime = LocalRuntime(workdir, config, template=template, progress=progress)
        t0 = time.monotonic()
        state = runtime.start()
        cold_s = time.monotonic() - t0
        cold_phases = state.startup_seconds
        try:
            url = state.url
            pds_pid = int(state.pids["pds"])
            idle_rss = rss_mib(pds_pid)
            invite = httpx.post(
                f"{url}/xrpc/com.atproto.server.createInviteCode",
                json={"useCount": accounts},
                auth=("admin", state.admin_password),
                headers={RATE_LIMIT_BYPASS_HEADER: state.rate_limit_bypass_key},
                timeout=60,
            ).json()["code"]
            t0 = time.monotonic()
            dids = []
            for n in range(accounts):
                created = operator_client(url, state).com.atproto.server.create_account(
                    models.ComAtprotoServerCreateAccount.Data(
                        handle=f"bench{n:04d}.test",
                        email=f"bench{n:04d}@example.com",
                        password=PASSWORD,
                        invite_code=invite,
                    )
                )
                dids.append(created.did)
            signup_s = time.monotonic() - t0

            last = f"bench{accounts - 1:04d}.test"
            client = operator_client(url, state)
            client.login(last, PASSWORD, fetch_bsky_profile=False)
            latencies: list[float] = []
            with ProcessSampler(pds_pid) as load:
                for n in range(posts):
                    t0 = time.monotonic()
                    client.send_post(f"post {n}", profile_identify=dids[-1])
                    latencies.append((time.monotonic() - t0) * 1000)

            acknowledged = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            t0 = time.monotonic()
            while not backup_caught_up(runtime, acknowledged, accounts + 3):
                if time.monotonic() - t0 > 600:
                    raise RuntimeError("the backup did not catch up within 600 s")
                time.sleep(0.5)
            catch_up_s = time.monotonic() - t0
        finally:
            runtime.kill()

        runtime = LocalRuntime(workdir, config, template=template, progress=progress)
        t0 = time.monotonic()
        state = runtime.start()
        warm_s = time.monotonic() - t0
        warm_phases = state.startup_seconds
        try:
            client = operator_client(state.url, state)
            client.login(last, PASSWORD, fetch_bsky_profile=False)
            restored_posts = client.com.atproto.repo.list_records(
                {"repo": dids[-1], "collection": "app.bsky.feed.post", "limit": 100}
            ).records
            if len(restored_posts) != min(posts, 100):
                raise RuntimeError(f"restored {len(restored_posts)} posts, expected {posts}")
        finally:
            runtime.stop()
        journal = runtime.paths.aws / "requests.jsonl"
        journal_requests = len(journal.read_bytes().splitlines())
        journal_mib = journal.stat().st_size / 2**20

    return {
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "pds_version": state.pds_version,
        "synth_s": round(synth_s, 2),
        "cold_start_s": round(cold_s, 2),
        "accounts": accounts,
        "signup_s": round(signup_s, 2),
        "posts": posts,
        "create_record_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "max": round(max(latencies), 1),
        },
        "pds_idle_rss_mib": round(idle_rss, 1),
        "pds_load_rss_mib": {"mean": round(statistics.fmean(load.rss), 1), "max": max(load.rss)},
        "pds_load_cpu_percent_of_one_core": round(100 * load.cpu_seconds / load.wall_seconds, 1),
        "posts_per_second": round(posts / load.wall_seconds, 1),
        "backup_catch_up_s": round(catch_up_s, 2),
        "warm_restart_after_crash_s": round(warm_s, 2),
        # Seconds from start() to each milestone: local AWS up (journal replayed), backup
        # HEALTHY (restore done), PDS healthy, ready (edge up).
        "aws_journal": {"requests": journal_requests, "mib": round(journal_mib, 1)},
        "cold_phases_s": cold_phases,
        "warm_phases_s": warm_phases,
    }


def phases(milestones: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in milestones.items())


def section(result: dict[str, Any], command: str) -> str:
    m = result["machine"]
    lat = result["create_record_ms"]
    rss = result["pds_load_rss_mib"]
    return "\n".join(
        [
            BEGIN,
            "## Local runtime (`make run`)",
            "",
            f"Command: `{command}`  ",
            f"Machine: {m['cpus']} cores, `uname -m` = {m['arch']}, 1-min load average "
            f"{m['load_avg_1m_at_end']:.1f} at the end (other work shared the machine); "
            f"@atproto/pds {result['pds_version']} on Node 24. Measured "
            f"{datetime.now(UTC):%Y-%m-%d}.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| cold start to healthy (empty `.local/`, template already synthesized) "
            f"| {result['cold_start_s']:.1f} s |",
            f"| synthesis of the template (once per start, before the above) "
            f"| {result['synth_s']:.1f} s |",
            f"| warm restart to healthy after a crash (SIGKILL of every process), "
            f"{result['accounts']} accounts restored "
            f"| {result['warm_restart_after_crash_s']:.1f} s |",
            f"| createRecord through the edge, {result['posts']} sequential posts: p50 / p95 / max "
            f"| {lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f} ms |",
            f"| PDS RSS idle / during the posts (mean, max) | {result['pds_idle_rss_mib']:.0f} / "
            f"{rss['mean']:.0f}, {rss['max']:.0f} MiB |",
            f"| PDS CPU during the posts ({result['posts_per_second']:.1f} posts/s, one client) "
            f"| {result['pds_load_cpu_percent_of_one_core']:.0f} % of one core |",
            f"| {result['accounts']} sign-ups, one after another | {result['signup_s']:.1f} s |",
            f"| local AWS journal after the run (replayed at each start) "
            f"| {result['aws_journal']['requests']} requests, {result['aws_journal']['mib']} MiB |",
            f"| backup caught up after the last post | {result['backup_catch_up_s']:.1f} s |",
            "",
            f"Milestones, seconds after start: cold: {phases(result['cold_phases_s'])}; "
            f"warm: {phases(result['warm_phases_s'])}.",
            "",
            "Cold start includes moto, PLC and SMTP sink, the backup sidecar's first-boot check "
            "of the empty backup, the PDS (its migrations) and the edge. The warm restart starts "
            "with an empty data directory, like a replacement Fargate task: moto replays its "
            "journal, the sidecar restores every database and key file, then the PDS starts.",
            END,
        ]
    )


def write_section(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        current = before + text + after
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--write", type=Path, help="replace the local section of this file")
    parser.add_argument(
        "--from-json", type=Path, help="render an earlier result instead of measuring"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        args.accounts, args.posts = result["accounts"], result["posts"]
    else:
        result = run(args.accounts, args.posts)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write:
        command = (
            f".venv/bin/python benchmarks/local_runtime.py --accounts {args.accounts} "
            f"--posts {args.posts}"
        )
        write_section(args.write, section(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
