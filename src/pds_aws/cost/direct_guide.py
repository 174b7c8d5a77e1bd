"""The direct edge's section of guides/COST.md: its cost beside the default and the reference,
and what it gives up (failover time part by part, Let's Encrypt, no allow-list outside the task)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pds_aws.cost.measured import read_direct_failover
from pds_aws.cost.results import Estimate
from pds_aws.cost.table import usd

DIRECT_SHAPE = "Direct edge (no load balancer)"
DIRECT_QUARTER_SHAPE = "Direct edge + 0.25 vCPU"
HEALTH_CHECK_PRICES = ("route53_health_check_month", "route53_health_check_feature_month")


def failover_parts(record: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """The failover of the direct shape, task lost -> serving on a new address, part by part,
    from benchmarks/direct_failover.py's record in measured.json (measured or modeled)."""
    if record is None:
        return [("all parts", "not measured yet", "run benchmarks/direct_failover.py --write")]
    source = f"measured: BENCHMARKS.md, Direct edge ({record['accounts']} accounts, local)"
    return [
        (
            "detection",
            f"0 s when the task stops (crash, Spot interruption: ECS replaces it at once); "
            f"{record['hung_detection_s']:.0f} s when it hangs",
            "the PDS container's health check, interval x retries",
        ),
        (
            "placement, network interface, image pulls",
            f"{record['placement_and_pull_s']:.0f} s",
            "assumed: Fargate publishes no figure; not measurable here",
        ),
        (
            "restore (backup sidecar healthy, certificate included)",
            f"{record['restore_s']} s",
            source,
        ),
        ("PDS healthy after the restore", f"{record['pds_start_s']} s", source),
        (
            "certificate",
            f"{record['certificate_keeper_s']} s: restored with the backup, "
            f"no ACME request ({record['certificates_issued']} certificate in the whole run)",
            source,
        ),
        ("proxy serving over TLS", f"{record['proxy_ready_s']} s", source),
        (
            "DNS",
            f"records move when the task is RUNNING; Route 53 propagation "
            f"{record['route53_propagation_s']:.0f} s + TTL {record['dns_ttl_s']} s "
            "([edge] dns_ttl_seconds), alongside the restore",
            "Route 53 GetChange (INSYNC within 60 s); the config",
        ),
        (
            "alerting (not part of recovery)",
            f"PdsUnhealthy after about {record['alarm_s']:.0f} s",
            "health check 3 x 30 s, 2 one-minute periods (direct/health_stack.py)",
        ),
    ]


def failover_summary(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "  The total is not measured yet."
    return (
        f"  Total: about **{record['task_stopped_s']:.0f} s** when the task stops, "
        f"**{record['task_hung_s']:.0f} s** when it hangs (placement, then the longer of the "
        f"new task's {record['serving_after_start_s']} s to serve and the DNS change). With the "
        "ALB the address never changes: the same start and restore, plus the target group's "
        "2 x 15 s healthy threshold, and no DNS wait."
    )


Table = Callable[[Iterable[str], Iterable[Iterable[str]]], list[str]]


def direct_section(
    estimates: Mapping[str, Estimate], default: Estimate, markdown_table: Table
) -> list[str]:
    """The direct edge beside the default and the reference, and what it gives up."""
    direct = estimates.get(DIRECT_SHAPE)
    quarter = estimates.get(DIRECT_QUARTER_SHAPE)
    if direct is None or quarter is None:
        return []

    def cost_of(est: Estimate, *keys: str) -> float:
        return sum(line.monthly for line in est.lines if line.price_key in keys)

    out = ["## Direct edge: the same PDS without a load balancer", ""]
    out += markdown_table(
        ("", "Reference", "Default (ALB)", "Direct", "Direct + 0.25 vCPU"),
        [
            (
                "fixed / month",
                usd(default.reference_monthly),
                usd(default.fixed_monthly),
                usd(direct.fixed_monthly),
                usd(quarter.fixed_monthly),
            ),
            (
                "total / month",
                "",
                usd(default.total_monthly),
                usd(direct.total_monthly),
                usd(quarter.total_monthly),
            ),
            (
                "load balancer",
                "ALB",
                usd(cost_of(default, "alb_hour", "alb_lcu_hour")),
                "none",
                "none",
            ),
            (
                "public IPv4 addresses",
                "3",
                usd(cost_of(default, "public_ipv4_hour")),
                usd(cost_of(direct, "public_ipv4_hour")),
                usd(cost_of(quarter, "public_ipv4_hour")),
            ),
            (
                "secrets (Secrets Manager)",
                "",
                usd(cost_of(default, "secret_month")),
                usd(cost_of(direct, "secret_month")),
                usd(cost_of(quarter, "secret_month")),
            ),
            (
                "health check (Route 53, us-east-1)",
                "",
                "",
                usd(cost_of(direct, *HEALTH_CHECK_PRICES)),
                usd(cost_of(quarter, *HEALTH_CHECK_PRICES)),
            ),
        ],
    )
    out += [
        "",
        "Backups, fail-closed restore, drills, e-mail, the KMS rotation key and the PDS, backup "
        'and drill alarms are the same in both shapes (guides/DEPLOY.md, "Edge kinds").',
        "",
        "### What the direct edge gives up",
        "",
        "- **Failover time.** A replaced task has a new public address. Task lost -> serving on "
        "the new address:",
        "",
    ]
    record = read_direct_failover()
    parts = failover_parts(record)
    out += ["  " + line for line in markdown_table(("part", "time", "source"), parts)]
    out += [
        "",
        failover_summary(record),
        "- **Let's Encrypt instead of ACM.** The certificate is ours to renew (`pds-aws-tls`, "
        "certbot, DNS-01 on Route 53): renewal at 30 days left, the CertificateExpiring alarm "
        "below 21. One wildcard certificate for every handle, so sign-ups never meet Let's "
        "Encrypt's 50 certificates per registered domain per week. ACM renews by itself and "
        "never expires silently.",
        "- **No allow-list outside the task.** With the ALB, requests outside the PDS paths are "
        "answered 403 by the load balancer and never reach the task; here the proxy in the task "
        "answers them, with the task's CPU. A flood reaches the 0.5 vCPU task directly (no ALB to "
        "absorb connections, no place for AWS WAF).",
        "- **Fewer load-balancer metrics.** Requests and 5xx come from the proxy's access log; "
        'there is no "more than one healthy task" alarm (guides/DEPLOY.md).',
        "",
    ]
    return out
