"""Markdown tables shared by the English and the multilingual parts of the report (ASCII only)."""

from __future__ import annotations

from typing import Any

from bench.systems import LAGHU, REFERENCE


def span(summary: dict[str, float] | None, fmt: str, scale: float = 1.0) -> str:
    """`median [min-max]`, or just the median when there was one sample."""
    if not summary:
        return "-"
    median, low, high = (summary[k] * scale for k in ("median", "min", "max"))
    if summary.get("n", 1) <= 1 or low == high:
        return format(median, fmt)
    return f"{format(median, fmt)} [{format(low, fmt)}-{format(high, fmt)}]"


def ratio(summary: dict[str, float] | None, key: str, reference: str = REFERENCE) -> str:
    """A ratio's `median [min-max]x`; `1 (reference)` on the reference's own row; `-` when not measured."""
    return "1 (reference)" if key == reference else (span(summary, ".2f") + "x" if summary else "-")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, followed by a blank line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def throughput_table(title: str, throughput: dict[str, Any], set_names: tuple[str, ...]) -> list[str]:
    """Texts/s per system on each set, with the ratios to model2vec and to laghu paired by round."""
    rows = []
    for key in throughput[set_names[0]]:
        row = [key]
        for name in set_names:
            entry = throughput[name][key]
            row += [
                span(entry["summary"], ",.0f"),
                ratio(entry["ratio_to_model2vec"], key),
                ratio(entry.get("ratio_to_laghu"), key, LAGHU),
            ]
        rows.append(row)
    header = ["system"]
    for name in set_names:
        header += [f"{name}/s", "x model2vec", "x laghu"]
    return [title, ""] + table(header, rows)


def latency_table(title: str, latency: dict[str, Any]) -> list[str]:
    """Single-text p50 and p99 per system, with ratios to model2vec and the p50 ratio to laghu."""
    rows = [
        [
            key,
            span(e["p50_us"], ".1f"),
            span(e["p99_us"], ".1f"),
            ratio(e["p50_ratio_to_model2vec"], key),
            ratio(e["p99_ratio_to_model2vec"], key),
            ratio(e.get("p50_ratio_to_laghu"), key, LAGHU),
        ]
        for key, e in latency.items()
    ]
    header = ["system", "p50", "p99", "p50 x model2vec", "p99 x model2vec", "p50 x laghu"]
    return [title, ""] + table(header, rows)


def targets_table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    """The targets with what was measured and PASS, FAIL or n/a (not measured)."""
    lines = []
    for t in rows:
        if t["measured"] is None:
            measured, mark = "not measured", "n/a"
        elif t["unit"] in ("x", "MiB"):
            summary = {"median": t["measured"], "min": t["min"], "max": t["max"], "n": 2}
            measured = span(summary, ".2f" if t["unit"] == "x" else ".1f") + ("x" if t["unit"] == "x" else " MiB")
            mark = "PASS" if t["passed"] else "FAIL"
        else:
            measured, mark = f"{t['measured']:+.4f}", "PASS" if t["passed"] else "FAIL"
        lines.append([t["target"], t["required"], measured, mark])
    passed = sum(1 for t in rows if t["passed"])
    measured_rows = sum(1 for t in rows if t["measured"] is not None)
    heading = f"## Targets ({title}): {passed} of {len(rows)} met" + (
        f" ({len(rows) - measured_rows} not measured)" if measured_rows < len(rows) else ""
    )
    return [heading, ""] + table(["target", "required", "measured (median [min-max] over rounds)", "result"], lines)


def agreement_table(title: str, agreement: dict[str, dict[str, Any]]) -> list[str]:
    """Per system and text set: the minimum cosine to model2vec's vectors and the rows identical bit for bit."""
    set_names = list(next(iter(agreement.values()))) if agreement else []
    rows = [
        [key]
        + [
            f"{figures[name]['min_cosine']:.7f} ({figures[name]['identical_rows']:,} of {figures[name]['rows']:,})"
            for name in set_names
        ]
        for key, figures in agreement.items()
        if key != REFERENCE
    ]
    header = ["system"] + [f"{name}: min cosine (rows identical)" for name in set_names]
    return [title, ""] + table(header, rows)
