"""The estimate as a table for people (`pds-aws cost`)."""

from __future__ import annotations

from pds_aws.cost.results import Estimate, Kind


def usd(value: float) -> str:
    if value and abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def unit_price(value: float) -> str:
    digits = f"{value:.10f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"${int(whole):,}.{fraction.ljust(2, '0')}"


def quantity(value: float) -> str:
    if value % 1 == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def table_rows(est: Estimate) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            line.resource,
            f"{quantity(line.quantity)} {line.unit.split(' (')[0]}",
            unit_price(line.unit_price),
            usd(line.monthly),
            line.note,
        )
        for line in est.lines
    ]


def summary_lines(est: Estimate) -> list[str]:
    saving = est.reference_monthly - est.fixed_monthly
    return [
        f"Fixed monthly:    {usd(est.fixed_monthly)}   (reference: ${est.reference_monthly:.2f}, "
        f"{est.reference_name}; {'saves' if saving >= 0 else 'costs'} {usd(abs(saving))})",
        f"Variable monthly: {usd(est.variable_monthly)}   (usage: [cost] in the config)",
        f"Total monthly:    {usd(est.total_monthly)}",
        *(
            [
                f"Pipeline run:     {usd(est.pipeline_run_usd)} each before free allowances "
                f"(the 'Pipeline:' lines / [cost] pipeline_runs_per_month)"
            ]
            if est.pipeline_run_usd is not None
            else []
        ),
    ]


def render_table(est: Estimate) -> str:
    """The plain-text estimate `pds-aws cost` prints."""
    header = ("Resource", "Quantity", "Unit price", "Monthly", "Note")
    rows = table_rows(est)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            row[1].rjust(widths[1]),
            row[2].rjust(widths[2]),
            row[3].rjust(widths[3]),
        ]
        return "  ".join(cells) + (f"  {row[4]}" if row[4] else "")

    out = [
        f"Monthly estimate, {est.region}, {est.hours_per_month:g} h/month, USD, list prices",
        "",
        fmt(header),
        "  ".join("-" * w for w in widths),
    ]
    kind: Kind | None = None
    for line, row in zip(est.lines, rows, strict=True):
        if line.kind is not kind:
            kind = line.kind
            out.append(f"[{kind.value}]")
        out.append(fmt(row))
    out += ["", *summary_lines(est)]
    if est.unpriced:
        out += ["", "UNPRICED (not in the total; add them to the cost model):"]
        out += [f"  {u.logical_id} ({u.resource_type}): {u.why}" for u in est.unpriced]
    else:
        out += [
            "",
            f"Unpriced resources: none ({len(est.free)} resources cost nothing by themselves).",
        ]
    return "\n".join(out)
