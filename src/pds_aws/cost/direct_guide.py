"""The direct edge's section of guides/COST.md: its cost beside the default and the reference,
and what it gives up (failover time part by part, Let's Encrypt, no allow-list outside the task)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pds_aws.cost.results import Estimate
from pds_aws.cost.table import usd

DIRECT_SHAPE = "Direct edge (no load balancer)"
DIRECT_QUARTER_SHAPE = "Direct edge + 0.25 vCPU"
HEALTH_CHECK_PRICES = ("route53_health_check_month", "route53_health_check_feature_month")

# The failover of the direct shape, task lost -> serving on a new address, part by part. Each
# figure says where it comes from: measured (BENCHMARKS.md), configured (the stack), or modeled.
FAILOVER_PARTS: tuple[tuple[str, str, str], ...] = (
    (
        "detection",
        "0 s when the task stops (crash, Spot interruption: ECS replaces it at once); up to "
        "45 s when it hangs (PDS container health check: 3 x 15 s)",
        "configured (infra/service.py)",
    ),
    (
        "new task placed and images pulled",
        "about 60 s",
        "modeled: Fargate publishes no figure; not measurable here",
    ),
    (
        "restore (backup sidecar healthy)",
        "12.2 s with 200 accounts, 52.6 s with 1,000 (moto as S3)",
        "measured: BENCHMARKS.md, Restore rate",
    ),
    (
        "PDS start after the restore",
        "9.8 s (warm restart, 100 accounts: backup healthy 22.7 s -> PDS healthy 32.5 s)",
        "measured: BENCHMARKS.md, local runtime",
    ),
    (
        "certificate",
        "0 s: restored with the backup, no ACME request (a first issue takes about a minute)",
        "by design (direct/tls.py)",
    ),
    (
        "DNS",
        "records updated when the task is RUNNING (before the restore ends); resolvers keep the "
        "old address up to the TTL, 60 s ([edge] dns_ttl_seconds), which overlaps the restore",
        "configured",
    ),
    (
        "alerting (not part of recovery)",
        "PdsUnhealthy after 3 failed probes 30 s apart (90 s) and 2 one-minute alarm periods",
        "configured (direct/health_stack.py)",
    ),
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
    out += ["  " + line for line in markdown_table(("part", "time", "source"), FAILOVER_PARTS)]
    out += [
        "",
        "  Sum for a stopped task with 200 accounts: about 60 + 12 + 10 s = 1.4 minutes until the "
        "PDS answers, with the 60 s DNS TTL running alongside (resolvers that cached the old "
        "address catch up within 60 s of the update, which happened at RUNNING); a hung task "
        "adds up to 45 s, 1,000 accounts add 40 s. With the ALB the address never changes: the "
        "same start and restore plus the target group's 2 x 15 s healthy threshold.",
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
