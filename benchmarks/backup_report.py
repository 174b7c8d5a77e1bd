"""Write the backup sidecar's section of BENCHMARKS.md from the benchmarks' JSON results.

The section sits between two marker lines and is replaced as a whole; the rest of the file
(other parts' sections) is left as it is. The idle S3 request rate also goes into the cost
model's data file (src/pds_aws/cost/measured.json), with its command and machine: the model
reads that file, never this prose.

    .venv/bin/python benchmarks/backup_report.py RESULTS_DIR BENCHMARKS.md
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pds_aws.backup import lease, plan
from pds_aws.cost.measured import BACKUP_IDLE_REQUESTS, measured_path

MEASURED = measured_path()

BEGIN = "<!-- backup-benchmarks:begin (benchmarks/backup_report.py writes this section) -->"
END = "<!-- backup-benchmarks:end -->"
COMMANDS = {
    "loss_window": ".venv/bin/python benchmarks/backup_loss_window.py --trials 10 "
    "--sigterm-trials 3",
    "restore_rate": ".venv/bin/python benchmarks/backup_restore_rate.py --accounts 200 1000 "
    "--large-gb 1 --repeat 3",
    "idle_requests": ".venv/bin/python benchmarks/backup_idle_requests.py --accounts 200 "
    "--window 600 --settle 240",
    "write_overhead": ".venv/bin/python benchmarks/backup_write_overhead.py --rounds 3 "
    "--commits 1000",
}


def seconds(duration: str) -> float:
    """A Litestream duration as the sidecar writes them ("250ms", "5m", "6h") in seconds."""
    for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if duration.endswith(unit) and duration[: -len(unit)].replace(".", "", 1).isdigit():
            return float(duration[: -len(unit)]) * factor
    raise ValueError(f"unknown duration {duration!r}")


def shown_command(result: dict[str, Any], default: str) -> str:
    """The command that produced a result, without `--json PATH` (where it was saved)."""
    return re.sub(r" --json \S+", "", result.get("command") or default)


def what_if_command(result: dict[str, Any]) -> str:
    """A what-if's command with its override quoted for a shell (the recorded one is not)."""
    command = shown_command(result, "").split(" --litestream-override ", 1)[0]
    return f"{command} --litestream-override '{json.dumps(result['litestream_override'])}'"


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def loss_window(result: dict[str, Any]) -> list[str]:
    killed = result["sigkill_lost_rows"]
    worst = max(killed)
    rate = result["rate_per_s"]
    termed = result["sigterm_lost_rows"]
    window = seconds(plan.MONITOR_INTERVAL) + seconds(plan.SYNC_INTERVAL)
    return [
        "### Loss window (SIGKILL of the task at a random moment)",
        "",
        f"Target: at most 1 s of commits lost ({rate:.0f} rows at {rate:.0f} rows/s); "
        "none under SIGTERM.",
        "",
        f"- SIGKILL, {len(killed)} trials, rows lost: {', '.join(map(str, killed))} "
        f"(worst {worst} = {worst / rate:.2f} s of commits, mean "
        f"{result['sigkill_lost_mean']}): {verdict(worst <= rate)}. By design the window is "
        f"up to `monitor-interval` + `sync-interval` ({window:g} s) plus one upload: a commit "
        f"waits up to {plan.MONITOR_INTERVAL} to be noticed and up to {plan.SYNC_INTERVAL} "
        "to be uploaded.",
        f"- SIGTERM (writer stopped first, as ECS orders it), {len(termed)} trials, rows lost: "
        f"{', '.join(map(str, termed))}: {verdict(all(n == 0 for n in termed))}.",
        f"- Settings: the sidecar's (Litestream `monitor-interval` {plan.MONITOR_INTERVAL}, "
        f"`sync-interval` {plan.SYNC_INTERVAL}); each trial restores with `pds-aws-backup run` "
        "into an empty directory.",
    ]


def restore_rate(result: dict[str, Any]) -> list[str]:
    lines = [
        "### Restore rate (moto as S3)",
        "",
        "Target: 1,000 accounts restored in under 15 s (start of `pds-aws-backup run` on an "
        "empty directory until `pds-aws-backup health` passes; the earlier target was 60 s).",
        "",
        "| accounts | databases | data | start to healthy | accounts/s "
        "| key files + databases, then Litestream's first sync (sidecar's log) "
        "| GETs per database |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in result["sizes"]:
        phases = [size.get("key_files_restore_s_logged"), size["databases_restore_s_logged"]]
        first_sync = size.get("first_sync_s_logged")
        logged = (
            f"{sum(phases):.1f} s, then {first_sync} s"
            if None not in phases and first_sync is not None
            else "-"
        )
        gets = size.get("gets_per_database", "-")
        data = f"{size['data_mb']} MiB" if "data_mb" in size else "-"
        runs = size.get("start_to_healthy_runs_s", [])
        spread = f" (runs: {', '.join(f'{r} s' for r in runs)})" if len(runs) > 1 else ""
        lines.append(
            f"| {size['accounts']:,} | {size['databases']:,} | {data} "
            f"| {size['start_to_healthy_s']} s{spread} "
            f"| {size['accounts_per_s']} | {logged} | {gets} |"
        )
    for large in [s for s in result["sizes"] if s.get("large_repositories")]:
        seconds = large["start_to_healthy_s"]
        lines += [
            "",
            f"{large['data_mb']:,} MiB in {large['accounts']} large repositories: {seconds} s: "
            f"{verdict(seconds < 60)} against 60 s for a 1 GB data set.",
        ]
    thousand = [
        s for s in result["sizes"] if s["accounts"] == 1000 and not s.get("large_repositories")
    ]
    if thousand:
        seconds = thousand[0]["start_to_healthy_s"]
        lines += [
            "",
            f"1,000 accounts: {seconds} s: {verdict(seconds < 15)} against 15 s, "
            f"{verdict(seconds < 60)} against the earlier 60 s.",
        ]
    lines += [
        "",
        "Start to healthy is what a replacement task waits before its PDS starts: the sidecar "
        "reports healthy once the restore is done (the logged phase plus listing the backup and "
        "taking the lease) and Litestream has synced every restored database once. Each "
        "database is resumed at its restored position (guides/BACKUP.md, step 4), so that sync "
        "uploads nothing: it is Litestream's two LISTs of the database's level 0 at start. "
        "On moto here the store's requests set the time: one GET for every key file (the "
        "generation's FILES object), about one per database (its LTX files, fetched while the "
        "chunk before is restored), then Litestream's two LISTs per database, served one after "
        "the other by one Python process (about 300 a second); S3 serves them in parallel. "
        "GETs per database: every GET of the restore (the LTX objects it "
        "needs: the newest snapshot and the files after it; FILES, and any key file it lacks; "
        "CURRENT, ORIGIN, LEASE) over the databases restored.",
        "Each account: a store.sqlite of 20 records (~20 KB) and its key file; real "
        "repositories are larger, so per-database overhead dominates here.",
    ]
    return lines


def tick_what_if(result: dict[str, Any]) -> tuple[str, float, float] | None:
    """(tick, its interval in the what-if, in the sidecar) for a what-if run that only shortens
    one kind of the sidecar's periodic Litestream work; None for any other override."""
    override = result.get("litestream_override") or {}
    if set(override) == {"levels"} and len(override["levels"]) == len(plan.COMPACTION_LEVELS):
        intervals = [seconds(level["interval"]) for level in override["levels"]]
        if len(set(intervals)) == 1 and len(set(plan.COMPACTION_LEVELS)) == 1:
            return "compaction", intervals[0], seconds(plan.COMPACTION_LEVELS[0])
    # The snapshot retention may differ from the sidecar's (`history_days` + one interval): a
    # tick's requests here do not depend on it, since nothing in a fresh benchmark is as old.
    if (
        set(override) == {"snapshot", "l0-retention-check-interval"}
        and "retention" in override["snapshot"]
        and override["snapshot"].get("interval") == override["l0-retention-check-interval"]
        and plan.SNAPSHOT_INTERVAL == plan.L0_RETENTION_CHECK_INTERVAL
    ):
        every = seconds(override["l0-retention-check-interval"])
        return "snapshot retention + L0 retention check", every, seconds(plan.SNAPSHOT_INTERVAL)
    return None


def idle_estimate(
    result: dict[str, Any], what_ifs: list[dict[str, Any]]
) -> tuple[float, list[str]] | None:
    """Requests per hour with the sidecar's settings when its ticks are hours apart.

    The window between ticks gives the steady rate; each what-if that only shortens one kind
    of tick gives that tick's requests per database (its requests beyond the steady rate,
    divided by its ticks in the window); the sidecar makes that tick 3600 / interval times an
    hour. None unless the window is shorter than every sidecar tick and both kinds were run.
    """
    longest_window = max([result["window_s"], *(w["window_s"] for w in what_ifs)])
    shortest_tick = min(
        seconds(i)
        for i in (*plan.COMPACTION_LEVELS, plan.SNAPSHOT_INTERVAL, plan.L0_RETENTION_CHECK_INTERVAL)
    )
    if longest_window >= shortest_tick:
        return None
    steady_per_s = result["requests_in_window"] / result["window_s"]
    per_hour = result["requests_in_window"] * 3600 / result["window_s"]
    notes, kinds = [], set()
    for what_if in what_ifs:
        tick = tick_what_if(what_if)
        if tick is None or what_if["databases"] != result["databases"]:
            continue
        kind, every, sidecar_every = tick
        ticks = what_if["window_s"] / every
        extra = max(0.0, what_if["requests_in_window"] - steady_per_s * what_if["window_s"])
        per_database = extra / ticks / what_if["databases"]
        kind_per_hour = per_database * result["databases"] * 3600 / sidecar_every
        per_hour += kind_per_hour
        kinds.add(kind)
        notes.append(
            f"- {kind} tick: {per_database:.2f} requests per database per tick (what-if "
            f"`{json.dumps(what_if['litestream_override'])}`: {what_if['requests_in_window']} "
            f"requests in {what_if['window_s'] / 60:.1f} min, {ticks:.1f} ticks); the sidecar "
            f"ticks every {sidecar_every / 3600:g} h: {kind_per_hour:.1f} requests per hour."
        )
        if kind == "compaction" and per_database < 1:
            # A database whose newest L1 file holds one transaction is skipped without a LIST
            # (most of this benchmark's, written once); one written over time costs one LIST.
            bound = (1 - per_database) * result["databases"] * 3600 / sidecar_every
            notes.append(
                "  Databases whose newest L1 file spans one transaction (most here: written "
                "once) are skipped without a LIST; once every database has been written over "
                f"time each costs one LIST per tick: {bound:.1f} more requests per hour."
            )
    if len(kinds) < 2:
        return None
    return per_hour, notes


def idle_per_hour(result: dict[str, Any], what_ifs: list[dict[str, Any]]) -> float:
    """The idle requests per hour as BENCHMARKS.md states it (rounded as shown there)."""
    estimate = idle_estimate(result, what_ifs)
    return float(result["requests_per_hour"]) if estimate is None else float(round(estimate[0]))


def measured_idle(
    result: dict[str, Any], what_ifs: list[dict[str, Any]], when: str
) -> dict[str, Any]:
    """The cost model's record of the idle rate (measured.json's `backup_idle_requests`)."""
    command = shown_command(result, COMMANDS["idle_requests"])
    if what_ifs:
        command += " (and its what-if runs; make benchmarks-backup)"
    return {
        "requests_per_hour": idle_per_hour(result, what_ifs),
        # Between ticks only the lease renewals remain: one task's, whatever its databases.
        "per_task_per_hour": float(result["requests_per_hour"]),
        "accounts": result["accounts"],
        "databases": result["databases"],
        "measured": when,
        "command": command,
        "machine": str(result["machine"]).rstrip("."),
        "written_by": "benchmarks/backup_report.py, with the Idle S3 requests section of "
        "BENCHMARKS.md",
    }


def write_measured(record: dict[str, Any], path: Path = MEASURED) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data[BACKUP_IDLE_REQUESTS] = record
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def idle_requests(result: dict[str, Any], what_ifs: list[dict[str, Any]]) -> list[str]:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(result["by_operation"].items())) or "none"
    scope = f"{result['accounts']} accounts ({result['databases']} databases)"
    counted = (
        f"counted at the moto server over {result['window_s'] / 60:.1f} minutes after "
        f"replication settled: {result['requests_in_window']} requests ({ops})"
    )
    lines = [
        "### Idle S3 requests",
        "",
        "Target: under 100 S3 requests per hour with 200 accounts and no writes.",
        "",
    ]
    estimate = idle_estimate(result, what_ifs)
    if estimate is None:
        per_hour = result["requests_per_hour"]
        lines += [
            f"- {scope}, {counted}, extrapolated to **{per_hour:,} per hour**: "
            f"{verdict(per_hour < 100)}.",
            "- Extrapolated from the window (requests x 3600 / window length).",
        ]
    else:
        per_hour, notes = estimate
        lines += [
            f"- {scope}: **~{per_hour:,.0f} per hour** with the sidecar's Litestream settings: "
            f"{verdict(per_hour < 100)}. Litestream's periodic work on an unchanged database "
            f"comes in ticks hours apart (compaction every {', '.join(plan.COMPACTION_LEVELS)}, "
            f"snapshot retention every {plan.SNAPSHOT_INTERVAL}, L0 retention check every "
            f"{plan.L0_RETENTION_CHECK_INTERVAL}), so the hour is the steady rate between "
            "ticks plus each kind of tick as measured in a what-if run that only shortens it.",
            f"- Between ticks: {counted}, {result['requests_per_hour']:,} per hour "
            f"(PutObject: the sidecar renews its lease on the backup prefix every "
            f"{lease.RENEW_S:.0f} s).",
            *notes,
        ]
    if result.get("per_minute"):
        series = ", ".join(str(n) for n in result["per_minute"])
        lines.append(f"- Requests in each minute of the window: {series}.")
    return lines


PDS_WRITE_MS = 40.0  # createRecord through the edge, p50 (BENCHMARKS.md, local runtime)


def write_overhead(result: dict[str, Any]) -> list[str]:
    alone, replicated = result["alone_ms"], result["replicated_ms"]
    overhead = result["p50_overhead_percent"]
    rows = [("alone", alone), ("beside the sidecar", replicated)]
    no_watch = result.get("replicated_no_watch_ms")
    if no_watch is not None:
        rows.append(("what-if: beside a sidecar whose Litestream does not watch", no_watch))
    lines = [
        "### Write overhead",
        "",
        "Target: the writer's p50 commit latency with replication within 10 % of without.",
        "",
        "| writer | p50 | p95 | p99 |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {ms['p50']} ms | {ms['p95']} ms | {ms['p99']} ms |" for name, ms in rows),
        "",
        f"p50 overhead: {overhead:+.1f} % over {result['commits_per_mode']:,} commits per mode "
        f"at {result['rate_per_s']:.0f} commits/s: {verdict(overhead <= 10)} "
        f"({replicated['p50'] - alone['p50']:+.3f} ms a commit).",
        "",
    ]
    if no_watch is not None:
        saved = replicated["p50"] - no_watch["p50"]
        lines += [
            f"Without Litestream's directory watch the overhead is "
            f"{result['p50_overhead_no_watch_percent']:+.1f} % "
            f"({no_watch['p50'] - alone['p50']:+.3f} ms a commit): most of it is the inotify "
            "event each write to a watched directory raises (the WAL is in one) and Litestream "
            "reading it at once. The sidecar keeps the watch: it is how Litestream finds a "
            "database created after it started (each new account's store.sqlite), and "
            "Litestream's other way in (`POST /register` on its control socket) replicates such "
            "a database with the default 1 s monitor and sync intervals, which would double "
            f"the loss window of new accounts to save about {saved:.3f} ms a commit, "
            f"{saved / PDS_WRITE_MS * 100:.2f} % of a PDS write.",
            "",
        ]
    lines.append(
        "The writer commits as the PDS does: WAL, no automatic checkpoint, `synchronous` NORMAL "
        "(better-sqlite3 builds SQLite with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1 and the PDS sets "
        f"none), so a commit is a write to the WAL without fsync, {alone['p50']} ms here. Runs "
        "before "
        "2026-11-30 22:30 used Python's default, FULL (an fsync per commit, about 0.5 ms, which "
        "Litestream's own fsyncs on the same disk slowed by +5 % to +42 % from run to run). "
        f"A PDS write (createRecord) takes about {PDS_WRITE_MS:.0f} ms at p50 (BENCHMARKS.md, "
        "local runtime)."
    )
    return lines


SECTIONS: dict[str, Any] = {
    "loss_window": loss_window,
    "restore_rate": restore_rate,
    "idle_requests": None,  # needs the what-if runs too: rendered by idle_requests()
    "write_overhead": write_overhead,
}


def idle_what_ifs(what_ifs: list[dict[str, Any]]) -> list[str]:
    """Idle runs with Litestream settings other than the sidecar's, for its maintainers."""
    lines = [
        "#### What-if runs: the sidecar's settings with one tick shortened",
        "",
        "Same benchmark with `--litestream-override JSON` (merged into the config the sidecar "
        "writes). Each one makes one kind of the sidecar's periodic Litestream work happen "
        "within the window, to measure what one tick costs.",
        "",
        "| override | window | requests | requests per minute |",
        "|---|---:|---:|---|",
    ]
    for result in what_ifs:
        override = json.dumps(result["litestream_override"])
        series = ", ".join(str(n) for n in result.get("per_minute", []))
        lines.append(
            f"| `{override}` | {result['window_s'] / 60:.0f} min "
            f"| {result['requests_in_window']} | {series} |"
        )
    return [
        *lines,
        "",
        "Why ticks cost requests when nothing changed (Litestream 0.5 source): every compaction "
        "level ticks for every database on wall-clock multiples of its interval, and "
        "`Store.CompactDB` compares the source level's newest TXID with the destination's "
        "*oldest*, so an unchanged database falls through to one LIST of the source level; "
        "the snapshot tick lists the snapshot level and every higher level to enforce "
        "retention; the L0 retention check lists L1 and L0. Replica syncs of an unchanged "
        "database make none (positions compared in memory), and uploads are one PUT per L0 "
        "file, i.e. only when something changed. Litestream's default levels (30 s, 5 min, "
        "1 h) cost about 133 LISTs per unchanged database an hour; the sidecar's levels tick "
        f"every {', '.join(plan.COMPACTION_LEVELS)}.",
        "",
        "Commands:",
        "",
        *(f"- `{what_if_command(result)}`" for result in what_ifs if result.get("command")),
    ]


def render(
    results: dict[str, dict[str, Any]], when: str, what_ifs: list[dict[str, Any]] | None = None
) -> str:
    lines = [
        BEGIN,
        "## Backup sidecar",
        "",
        f"Report written {when} from `make benchmarks-backup` (about 70 minutes; each "
        "benchmark's own time is beside its machine): the real "
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
        if name == "idle_requests":
            lines += idle_requests(result, what_ifs or [])
        else:
            lines += section(result)
        if name == "idle_requests" and what_ifs:
            lines += ["", *idle_what_ifs(what_ifs)]
        lines += [
            "",
            f"Command: `{shown_command(result, COMMANDS[name])}`  ",
            f"Machine: {result['machine']}"
            + (f"; measured {result['measured_at']}." if "measured_at" in result else "."),
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


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    results_dir, target = Path(sys.argv[1]), Path(sys.argv[2])
    results = {}
    for path in sorted(results_dir.glob("backup_*.json")):
        result = json.loads(path.read_text())
        result["measured_at"] = _stamp(path.stat().st_mtime)
        results[result["benchmark"]] = result
    what_ifs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("whatif/*.json"))]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(replace_section(existing, render(results, when, what_ifs)), encoding="utf-8")
    print(f"wrote the backup section of {target} ({len(results)} benchmarks)")
    if "idle_requests" in results:
        idle = results["idle_requests"]
        write_measured(measured_idle(idle, what_ifs, idle["measured_at"]))
        print(f"wrote the idle request rate into {MEASURED} (then: make cost-guide)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
