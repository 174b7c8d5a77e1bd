"""The documented shapes of the default config (Spot, smaller sizes, the reference's size...)
and their trade-offs, each priced by building the config it describes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pds_aws.config import Architecture, Config
from pds_aws.cost.measured import backup_idle_rate, read_idle_measurement
from pds_aws.cost.model import estimate
from pds_aws.cost.results import Estimate


@dataclass(frozen=True)
class Shape:
    name: str
    config_lines: tuple[str, ...]  # what the operator writes in the config
    overrides: Mapping[str, Mapping[str, Any]]  # section -> settings
    trade_off: str


SPOT_TRADE_OFF = (
    "AWS may reclaim a Spot task with a two-minute notice: ECS sends SIGTERM, the backup "
    "sidecar makes its final sync (nothing acknowledged is lost), and the service starts a new "
    "task that restores from S3. The PDS is down for that restart (a few minutes) and, when Spot "
    "capacity is short, until it returns. Spot prices float."
)
SHAPES: tuple[Shape, ...] = (
    Shape(
        "Default",
        (),
        {},
        "0.5 vCPU / 1 GiB arm64 on-demand, the size measured to fit the PDS and the backup "
        "sidecar with 20 accounts under load (BENCHMARKS.md, Task size).",
    ),
    Shape("Fargate Spot", ("[task] spot = true",), {"task": {"spot": True}}, SPOT_TRADE_OFF),
    Shape(
        "0.25 vCPU",
        ("[task] cpu = 256",),
        {"task": {"cpu": 256}},
        "Same memory, a quarter of a vCPU. The measured load used more than that at its peaks, "
        "so sign-ups, bursts of posts and the restore after a task replacement run slower; fine "
        "for a few quiet accounts.",
    ),
    Shape(
        "Spot + 0.25 vCPU (cheapest)",
        ("[task] spot = true", "[task] cpu = 256"),
        {"task": {"spot": True, "cpu": 256}},
        "Both trade-offs above.",
    ),
    Shape(
        "2 GiB memory",
        ("[task] memory = 2048",),
        {"task": {"memory": 2048}},
        "Headroom for more accounts or larger repositories than the measured 20.",
    ),
    Shape(
        "Container Insights on",
        ("[monitoring] container_insights = true",),
        {"monitoring": {"container_insights": True}},
        "Task-level CPU, memory, network and storage metrics, billed as custom metrics. The "
        "alarms and the dashboard do not need them.",
    ),
    Shape(
        "Reference's shape",
        ("[task] cpu = 1024", "[task] memory = 2048", '[task] architecture = "x86_64"'),
        {"task": {"cpu": 1024, "memory": 2048, "architecture": Architecture.X86_64}},
        "The reference's 1 vCPU / 2 GB x86 task in this stack, for a like-for-like comparison.",
    ),
    Shape(
        "Direct edge (no load balancer)",
        ('[edge] kind = "direct"',),
        # Spot is the direct edge's default when [task] spot is unset, as in pds.example.toml.
        {"edge": {"kind": "direct"}, "task": {"spot": True}},
        "No ALB: the task's own address, Caddy and a Let's Encrypt wildcard certificate in the "
        "task, DNS records that follow the task, an external Route 53 health check in "
        'us-east-1; on Fargate Spot by default. See "Direct edge" below for what it gives up.',
    ),
    Shape(
        "Direct edge + 0.25 vCPU",
        ('[edge] kind = "direct"', "[task] cpu = 256"),
        {"edge": {"kind": "direct"}, "task": {"spot": True, "cpu": 256}},
        "The direct edge with a quarter of a vCPU: the 0.25 vCPU trade-off above, and the proxy "
        "shares that CPU.",
    ),
    Shape(
        "Default in us-east-1",
        ('[aws] region = "us-east-1"',),
        {"aws": {"region": "us-east-1"}},
        "N. Virginia lists the same prices as Ohio for everything this stack uses.",
    ),
)


def shape_config(config: Config, shape: Shape) -> Config:
    """`config` with the shape's settings, validated like a config file."""
    from pds_aws.config import parse_config

    data = config.model_dump(mode="json", exclude={"source"})
    for section, settings in shape.overrides.items():
        data[section] = {
            **data[section],
            **{k: v.value if isinstance(v, Enum) else v for k, v in settings.items()},
        }
    return parse_config(data, config.source)


Synthesizer = Callable[[Config], Mapping[str, Any]]


def estimate_shapes(
    config: Config, synthesize: Synthesizer, shapes: Iterable[Shape] = SHAPES
) -> dict[str, Estimate]:
    """Each documented shape of `config`, synthesized and priced."""
    measured = read_idle_measurement()
    estimates = {}
    for shape in shapes:
        shaped = shape_config(config, shape)
        estimates[shape.name] = estimate(
            synthesize(shaped), shaped, backup_idle=backup_idle_rate(shaped.cost, measured)
        )
    return estimates
