"""The direct edge's failover (task lost -> serving on a new address), part by part, and the
task's memory and CPU with the proxy and the certificate keeper in it.

    .venv/bin/python benchmarks/direct_failover.py --accounts 50 --posts 100 --write BENCHMARKS.md

Measured on the local runtime with `[edge] kind = "direct"` (the synthesized task: backup
sidecar, PDS, `pds-aws-tls` with the local certificate authority, Caddy with the task's
configuration), driven by the `atproto` client over HTTPS with the handle's name in SNI:

1. ACCOUNTS accounts sign up, then POSTS sequential posts by one account; RSS and CPU of every
   container process are sampled meanwhile (the task size with the proxy in it).
2. The backup catches up; every process is SIGKILLed (a crashed task); a new task starts with an
   empty data volume. From its start: backup healthy (restore, the certificate included), PDS
   healthy, certificate keeper healthy (no new certificate: the local authority's log), proxy
   serving over TLS.

What cannot run here is modeled, each with its source: detection, task placement and image
pull, the DNS update and TTL, the health check's alarm. The figures go to a section of
BENCHMARKS.md and to the `direct_failover` record of src/pds_aws/cost/measured.json, from which
guides/COST.md's failover table is generated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from atproto import Client, models
from atproto_client.request import Request

from local_runtime import ProcessSampler, backup_caught_up, percentile
from pds_aws.config import Config, load_config, parse_config
from pds_aws.cost.measured import DIRECT_FAILOVER, measured_path
from pds_aws.direct import health_stack
from pds_aws.direct.local_ca import LocalAuthority, issued
from pds_aws.infra.synth import synthesize
from pds_aws.local.runtime import LocalRuntime
from pds_aws.local.taskdef import find_task_definition
from pds_aws.names import EXAMPLE_CONFIG_FILE
from pds_aws.ops.xrpc import RATE_LIMIT_BYPASS_HEADER

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- direct-failover:begin (benchmarks/direct_failover.py writes this section) -->"
END = "<!-- direct-failover:end -->"
PASSWORD = "bench-pass-1234"
CONTAINERS = ("backup", "pds", "tls", "proxy")
# Modeled: Fargate publishes no launch-time figure; placement, ENI attachment and the pull of
# four images (PDS ~170 MB compressed) are taken as a minute. Replace with `make e2e-aws`.
PLACEMENT_AND_PULL_S = 60.0
# Route 53: "changes generally propagate to all Route 53 name servers within 60 seconds"
# (Route 53 API Reference, GetChange: PENDING -> INSYNC).
ROUTE53_PROPAGATION_S = 60.0


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants (Litestream runs under the backup sidecar)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        for child in children:
            found += tree_pids(int(child))
    return found


def tree_rss_mib(pid: int) -> float:
    total = 0.0
    for p in tree_pids(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def resolve_to_loopback(domain: str) -> None:
    """<domain> and *.<domain> -> 127.0.0.1 in this process (a hosts file of our own)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == domain or host.endswith("." + domain)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def pds_hung_detection_s(template: dict[str, Any]) -> float:
    """How long ECS takes to call a hung PDS unhealthy: its health check's interval x retries
    (from the synthesized task definition)."""
    _, task = find_task_definition(template)
    pds = next(c for c in task["ContainerDefinitions"] if c["Name"] == "pds")
    check = pds["HealthCheck"]
    return float(check["Interval"] * check["Retries"])


def direct_config() -> Config:
    example = load_config(ROOT / EXAMPLE_CONFIG_FILE)
    data = example.model_dump(mode="json", exclude={"source"})
    data["edge"]["kind"] = "direct"
    data["task"]["spot"] = True
    return parse_config(data, example.source)


def run(accounts: int, posts: int) -> dict[str, Any]:
    config = direct_config()
    domain = config.pds.domain
    resolve_to_loopback(domain)
    template = synthesize(config)
    hung = pds_hung_detection_s(template)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="pds-direct-bench-") as tmp:
        work = Path(tmp)
        runtime = LocalRuntime(work, config, progress=progress, template=template)
        state = runtime.start()
        authority = runtime.paths.local / "ca" / "ca.pem"

        def client() -> Client:
            c = Client(state.url, request=Request(verify=str(authority), timeout=60))
            c.request.add_additional_header(RATE_LIMIT_BYPASS_HEADER, state.rate_limit_bypass_key)
            return c

        idle = {name: tree_rss_mib(state.pids[name]) for name in CONTAINERS}
        code = _invite(state.url, state.admin_password, accounts, str(authority))
        dids = []
        for i in range(accounts):
            created = client().com.atproto.server.create_account(
                models.ComAtprotoServerCreateAccount.Data(
                    handle=f"bench{i}.{domain}",
                    email=f"bench{i}@example.com",
                    password=PASSWORD,
                    invite_code=code,
                )
            )
            dids.append(created.did)
        poster = client()
        poster.login(f"bench0.{domain}", PASSWORD, fetch_bsky_profile=False)
        samplers = {name: ProcessSampler(state.pids[name]) for name in CONTAINERS}
        for sampler in samplers.values():
            sampler.__enter__()
        latencies = []
        t0 = time.monotonic()
        for i in range(posts):
            t = time.monotonic()
            poster.send_post(f"post {i}", profile_identify=dids[0])
            latencies.append((time.monotonic() - t) * 1000)
        posting_s = time.monotonic() - t0
        for sampler in samplers.values():
            sampler.__exit__()
        loaded = {name: tree_rss_mib(state.pids[name]) for name in CONTAINERS}
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        deadline = time.monotonic() + 300
        while not backup_caught_up(runtime, since, accounts + 3):
            if time.monotonic() > deadline:
                raise SystemExit("the backup did not catch up within 300 s")
            time.sleep(1)
        progress("crash: SIGKILL of every process")
        runtime.kill()

        runtime = LocalRuntime(work, config, progress=progress, template=template)
        runtime.start()
        warm = dict(runtime.timings)
        certificates = len(issued(LocalAuthority(runtime.paths.local / "ca")))
        check = client()
        check.login(f"bench0.{domain}", PASSWORD, fetch_bsky_profile=False)
        restored = check.com.atproto.repo.list_records(
            {"repo": dids[0], "collection": "app.bsky.feed.post", "limit": 100}
        )
        runtime.stop()
    if len(restored.records) != min(posts, 100):
        raise SystemExit(f"restored {len(restored.records)} posts of {posts}")
    return {
        "hung_detection_s": hung,
        "dns_ttl_s": config.edge.dns_ttl_seconds,
        "accounts": accounts,
        "posts": posts,
        "certificates_issued": certificates,
        "warm_milestones_s": warm,
        "create_record_ms": {
            "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95),
            "max": max(latencies),
        },
        "posts_per_second": posts / posting_s,
        "rss_idle_mib": idle,
        "rss_loaded_mib": loaded,
        "rss_max_during_posts_mib": {n: max(s.rss) for n, s in samplers.items()},
        "cpu_during_posts": {n: s.cpu_seconds / s.wall_seconds for n, s in samplers.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
    }


def _invite(url: str, admin_password: str, uses: int, ca: str) -> str:
    response = httpx.post(
        f"{url}/xrpc/com.atproto.server.createInviteCode",
        json={"useCount": uses},
        auth=("admin", admin_password),
        verify=ca,
        timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["code"])


def parts(result: dict[str, Any]) -> dict[str, float]:
    """Seconds of each measured part of a restart, from the new task's milestones.

    Locally the task's containers start one after another; on ECS the certificate keeper and
    the PDS both start once the backup is healthy, so the proxy waits for the later of them.
    """
    m = result["warm_milestones_s"]
    restore = m["backup_healthy"] - m["aws_ready"]
    pds = m["pds_healthy"] - m["backup_healthy"]
    keeper = m["tls_healthy"] - m["pds_healthy"]
    proxy = m["proxy_ready"] - m["tls_healthy"]
    return {
        "restore_s": round(restore, 1),
        "pds_start_s": round(pds, 1),
        "certificate_keeper_s": round(keeper, 1),
        "proxy_ready_s": round(proxy, 1),
        "serving_after_start_s": round(restore + max(pds, keeper) + proxy, 1),
    }


def failover(result: dict[str, Any]) -> dict[str, float]:
    """Task lost -> serving on the new address: measured parts plus the modeled ones."""
    measured = parts(result)["serving_after_start_s"]
    ttl = float(result["dns_ttl_s"])
    # DNS is updated when the new task is RUNNING, before its restore: the last resolver that
    # cached the old address forgets it at most propagation + TTL after that.
    dns = ROUTE53_PROPAGATION_S + ttl
    stopped = PLACEMENT_AND_PULL_S + max(measured, dns)
    return {
        "task_stopped_s": round(stopped, 1),
        "task_hung_s": round(result["hung_detection_s"] + stopped, 1),
        "alarm_s": float(
            health_stack.FAILURE_THRESHOLD * health_stack.REQUEST_INTERVAL
            + health_stack.ALARM_EVALUATION_PERIODS * health_stack.ALARM_PERIOD.to_seconds()
        ),
    }


def section(result: dict[str, Any], command: str) -> str:
    m = result["machine"]
    p = parts(result)
    f = failover(result)
    loaded = result["rss_loaded_mib"]
    cpu = result["cpu_during_posts"]
    lat = result["create_record_ms"]
    return "\n".join(
        [
            BEGIN,
            "## Direct edge: failover and task size with the proxy",
            "",
            f"Command: `{command}`  ",
            f"Machine: {m['cpus']} cores, `uname -m` = {m['arch']}, 1-min load average "
            f"{m['load_avg_1m_at_end']:.1f} at the end (other work shared the machine). "
            f"Measured {datetime.now(UTC):%Y-%m-%d}.",
            "",
            f'Local runtime with `[edge] kind = "direct"`: {result["accounts"]} accounts, '
            f"{result['posts']} posts through Caddy over HTTPS (SNI), then SIGKILL of every "
            "process and a new task on an empty data volume.",
            "",
            "| part of a restart (measured) | seconds |",
            "|---|---|",
            "| restore: backup sidecar healthy (databases, keys, certificate) "
            f"| {p['restore_s']} |",
            f"| PDS healthy after the restore | {p['pds_start_s']} |",
            f"| certificate keeper healthy (restored certificate, "
            f"{result['certificates_issued']} certificate issued in all) "
            f"| {p['certificate_keeper_s']} |",
            f"| proxy serving over TLS | {p['proxy_ready_s']} |",
            f"| **new task serving after its containers start** (keeper and PDS in parallel, "
            f"as on ECS) | **{p['serving_after_start_s']}** |",
            "",
            "| part (modeled) | seconds | source |",
            "|---|---|---|",
            "| detection, task stopped (crash, Spot interruption) | 0 | ECS replaces a "
            "stopped task of a service at once |",
            f"| detection, task hung | {result['hung_detection_s']:.0f} | the PDS container's "
            "health check, interval x retries (task definition) |",
            f"| placement, network interface, image pulls | {PLACEMENT_AND_PULL_S:.0f} | "
            "assumed: Fargate publishes no figure |",
            f"| DNS: Route 53 propagation + TTL | {ROUTE53_PROPAGATION_S:.0f} + "
            f"{result['dns_ttl_s']} | Route 53 GetChange (INSYNC within 60 s); "
            "`[edge] dns_ttl_seconds`; runs alongside the restore (records move at RUNNING) |",
            f"| PdsUnhealthy alarm (not part of recovery) | {f['alarm_s']:.0f} | health check "
            "3 x 30 s, 2 one-minute periods (direct/health_stack.py) |",
            "",
            "**Failover, task lost -> serving on the new address: about "
            f"{f['task_stopped_s']:.0f} s "
            f"when the task stops, {f['task_hung_s']:.0f} s when it hangs** (placement + the "
            "longer of the restart and DNS).",
            "",
            "| task size with the proxy | backup (+ Litestream) | PDS | tls keeper | proxy |",
            "|---|---|---|---|---|",
            "| RSS idle, MiB | "
            + " | ".join(f"{result['rss_idle_mib'][n]:.0f}" for n in CONTAINERS)
            + " |",
            "| RSS after the posts, MiB | "
            + " | ".join(f"{loaded[n]:.0f}" for n in CONTAINERS)
            + " |",
            "| CPU during the posts, share of one core (main process) | "
            + " | ".join(f"{cpu[n]:.2f}" for n in CONTAINERS)
            + " |",
            "",
            f"The four containers hold {sum(loaded.values()):.0f} MiB of the task's 1,024 after "
            f"the posts (the proxy and the keeper {loaded['proxy'] + loaded['tls']:.0f} MiB of "
            "it); createRecord through Caddy p50 / p95 / max "
            f"{lat['p50']:.0f} / {lat['p95']:.0f} / {lat['max']:.0f} ms at "
            f"{result['posts_per_second']:.1f} posts/s (one client, a loaded machine).",
            END,
        ]
    )


def write_section(path: Path, text: str) -> None:
    current = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        current = before + text + after
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(current, encoding="utf-8")


def write_measured(result: dict[str, Any], command: str) -> None:
    """The cost guide's failover table reads this record (measured.json, `direct_failover`)."""
    path = measured_path()
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    m = result["machine"]
    data[DIRECT_FAILOVER] = {
        **parts(result),
        **failover(result),
        "accounts": result["accounts"],
        "certificates_issued": result["certificates_issued"],
        "dns_ttl_s": result["dns_ttl_s"],
        "hung_detection_s": result["hung_detection_s"],
        "placement_and_pull_s": PLACEMENT_AND_PULL_S,
        "route53_propagation_s": ROUTE53_PROPAGATION_S,
        "measured": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "command": command,
        "machine": f"{m['cpus']} cores, {m['arch']}, load average "
        f"{m['load_avg_1m_at_end']:.1f} at the end",
        "written_by": "benchmarks/direct_failover.py, with its section of BENCHMARKS.md",
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--write", type=Path, help="replace the section of this file")
    parser.add_argument("--from-json", type=Path, help="write from a result saved by --json")
    args = parser.parse_args(argv)
    command = (
        f".venv/bin/python benchmarks/direct_failover.py --accounts {args.accounts} "
        f"--posts {args.posts}"
    )
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        command = command.replace(f"--accounts {args.accounts} --posts {args.posts}", "")
        command += f"--accounts {result['accounts']} --posts {result['posts']}"
    else:
        result = run(args.accounts, args.posts)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**parts(result), **failover(result)}, indent=2))
    if args.write:
        write_section(args.write, section(result, command))
        write_measured(result, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
