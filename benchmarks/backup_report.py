"""Write the backup sidecar's section of BENCHMARKS.md from the benchmarks' JSON results.

The section sits between two marker lines and is replaced as a whole; the rest of the file
(other parts' sections) is left as it is.

    .venv/bin/python benchmarks/backup_report.py RESULTS_DIR BENCHMARKS.md
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BEGIN = "<!-- backup-benchmarks:begin (benchmarks/backup_report.py writes this section) -->"
END = "<!-- backup-benchmarks:end -->"
COMMANDS = {
    "loss_window": ".venv/bin/python benchmarks/backup_loss_window.py --trials 10 "
    "--sigterm-trials 3",
    "restore_rate": ".venv/bin/python benchmarks/backup_restore_rate.py --accounts 200 1000",
    "idle_requests": ".venv/bin/python benchmarks/backup_idle_requests.py --accounts 200 "
    "--window 600",
    "write_overhead": ".venv/bin/python benchmarks/backup_write_overhead.py --rounds 3 "
    "--commits 1000",
}


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def loss_window(result: dict[str, Any]) -> list[str]:
    killed = result["sigkill_lost_rows"]
    worst = max(killed)
    rate = result["rate_per_s"]
    termed = result["sigterm_lost_rows"]
    return [
        "### Loss window (SIGKILL of the task at a random moment)",
        "",
        f"Target: at most 1 s of commits lost ({rate:.0f} rows at {rate:.0f} rows/s); "
        "none under SIGTERM.",
        "",
        f"- SIGKILL, {len(killed)} trials, rows lost: {', '.join(map(str, killed))} "
        f"(worst {worst} = {worst / rate:.2f} s of commits, mean "
        f"{result['sigkill_lost_mean']}): {verdict(worst <= rate)}. By design the window is "
        "up to `monitor-interval` + `sync-interval` (1.25 s): a commit waits up to 250 ms to be "
        "noticed and up to 1 s to be uploaded.",
        f"- SIGTERM (writer stopped first, as ECS orders it), {len(termed)} trials, rows lost: "
        f"{', '.join(map(str, termed))}: {verdict(all(n == 0 for n in termed))}.",
        "- Settings: the sidecar's defaults (Litestream `monitor-interval` 250 ms, "
        "`sync-interval` 1 s); each trial restores with `pds-aws-backup run` into an empty "
        "directory.",
    ]


def restore_rate(result: dict[str, Any]) -> list[str]:
    lines = [
        "### Restore rate (moto as S3)",
        "",
        "Target: 1,000 accounts restored in under 60 s (start of `pds-aws-backup run` on an "
        "empty directory until `pds-aws-backup health` passes).",
        "",
        "| accounts | databases | start to healthy | accounts/s "
        "| key files + databases phase (sidecar's log) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        logged = size["databases_restore_s_logged"]
        lines.append(
            f"| {size['accounts']:,} | {size['databases']:,} | {size['start_to_healthy_s']} s "
            f"| {size['accounts_per_s']} | {logged if logged is not None else '-'} s |"
        )
    thousand = [s for s in result["sizes"] if s["accounts"] == 1000]
    if thousand:
        seconds = thousand[0]["start_to_healthy_s"]
        lines += ["", f"1,000 accounts: {seconds} s: {verdict(seconds < 60)}."]
    lines += [
        "",
        "Start to healthy is the restore (the logged phase) plus what the sidecar does before "
        "it reports healthy: it uploads the restored data as a new backup generation (a full "
        "snapshot of every database and every key file, by design: each generation is "
        "written by one Litestream lifetime) and starts Litestream on every database.",
        "Each account: a store.sqlite of 20 records (~20 KB) and its key file; real "
        "repositories are larger, so per-database overhead dominates here.",
    ]
    return lines


def idle_requests(result: dict[str, Any]) -> list[str]:
    per_hour = result["requests_per_hour"]
    ops = ", ".join(f"{k} {v}" for k, v in sorted(result["by_operation"].items())) or "none"
    lines = [
        "### Idle S3 requests",
        "",
        "Target: under 100 S3 requests per hour with 200 accounts and no writes.",
        "",
        f"- {result['accounts']} accounts ({result['databases']} databases), counted at the "
        f"moto server over {result['window_s'] / 60:.1f} minutes after replication settled: "
        f"{result['requests_in_window']} requests ({ops}), extrapolated to **{per_hour:,} per "
        f"hour**: {verdict(per_hour < 100)}.",
        "- Extrapolated from the window (requests x 3600 / window length); the window is at "
        "least two of Litestream's 5-minute L0 retention checks (the sidecar's setting).",
    ]
    if result.get("per_minute"):
        series = ", ".join(str(n) for n in result["per_minute"])
        lines.append(f"- Requests in each minute of the window: {series}.")
    return lines


def write_overhead(result: dict[str, Any]) -> list[str]:
    alone, replicated = result["alone_ms"], result["replicated_ms"]
    overhead = result["p50_overhead_percent"]
    return [
        "### Write overhead",
        "",
        "Target: the writer's p50 commit latency with replication within 10 % of without.",
        "",
        "| writer | p50 | p95 | p99 |",
        "|---|---:|---:|---:|",
        f"| alone | {alone['p50']} ms | {alone['p95']} ms | {alone['p99']} ms |",
        f"| beside the sidecar | {replicated['p50']} ms | {replicated['p95']} ms "
        f"| {replicated['p99']} ms |",
        "",
        f"p50 overhead: {overhead:+.1f} % over {result['commits_per_mode']:,} commits per mode "
        f"at {result['rate_per_s']:.0f} commits/s: {verdict(overhead <= 10)}.",
    ]


SECTIONS = {
    "loss_window": loss_window,
    "restore_rate": restore_rate,
    "idle_requests": idle_requests,
    "write_overhead": write_overhead,
}


def idle_what_ifs(what_ifs: list[dict[str, Any]]) -> list[str]:
    """Idle runs with Litestream settings other than the sidecar's, for its maintainers."""
    lines = [
        "#### What-if: other Litestream settings (not the sidecar's defaults)",
        "",
        "Same benchmark with `--litestream-override JSON` (merged into the config the sidecar "
        "writes); shorter windows, so the first minutes still hold the compactions that follow "
        "the initial upload.",
        "",
        "| override | window | requests per minute |",
        "|---|---:|---|",
    ]
    for result in what_ifs:
        override = json.dumps(result["litestream_override"])
        series = ", ".join(str(n) for n in result.get("per_minute", []))
        lines.append(f"| `{override}` | {result['window_s'] / 60:.0f} min | {series} |")
    return [
        *lines,
        "",
        "Reading (an estimate, not a measurement of a fix): the steady LISTs follow Litestream's "
        "L1 compaction ticks (every 30 s by default), which list every database even when "
        "nothing changed; moving L0 retention checks alone changes little. With L1 at 5 min, "
        "requests come only at the 5-minute ticks, about 2.5 per database per tick, so staying "
        "under 100 per hour at 200 accounts needs an L1 interval of about 5 h or more, or a "
        "Litestream that skips unchanged databases.",
    ]


def render(
    results: dict[str, dict[str, Any]], when: str, what_ifs: list[dict[str, Any]] | None = None
) -> str:
    lines = [
        BEGIN,
        "## Backup sidecar",
        "",
        f"Measured {when} with `make benchmarks-backup` (about 30 minutes): the real "
        "`pds-aws-backup` program and Litestream binary, moto server as S3 on loopback, on a "
        "shared CI-class machine whose other load is noted per benchmark. Benchmarks are "
        "not tests: nothing here is asserted in `make test`.",
        "",
    ]
    for name, section in SECTIONS.items():
        if name not in results:
            lines += [f"### {name}: not measured", ""]
            continue
        result = results[name]
        lines += section(result)
        if name == "idle_requests" and what_ifs:
            lines += ["", *idle_what_ifs(what_ifs)]
        lines += [
            "",
            f"Command: `{result.get('command', COMMANDS[name])}`  ",
            f"Machine: {result['machine']}.",
            "",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + section.rstrip("\n") + tail
    if not document:
        document = "# Benchmarks\n"
    return document.rstrip("\n") + "\n\n" + section


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    results_dir, target = Path(sys.argv[1]), Path(sys.argv[2])
    results = {}
    for path in sorted(results_dir.glob("backup_*.json")):
        result = json.loads(path.read_text())
        results[result["benchmark"]] = result
    what_ifs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("whatif/*.json"))]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(replace_section(existing, render(results, when, what_ifs)), encoding="utf-8")
    print(f"wrote the backup section of {target} ({len(results)} benchmarks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
