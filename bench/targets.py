"""The targets of issue 3, checked against one run's figures (ratios paired by round, medians over rounds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.stats import paired_ratios, summarize
from bench.systems import FASTEMBED, FLOOR, REFERENCE, edge_key

TARGET_VARIANTS = ("fp32", "int8")
SETS = ("queries", "documents")


def _target(
    name: str, ratio: dict[str, float] | None, required: str, ok: Callable[[float], bool], unit: str = "x"
) -> dict[str, Any]:
    """One target row; `ratio` None means not measured (passed is then None, reported as n/a)."""
    if ratio is None:
        return {"target": name, "required": required, "measured": None, "min": None, "max": None, "passed": None}
    return {
        "target": name,
        "required": required,
        "measured": ratio["median"],
        "min": ratio["min"],
        "max": ratio["max"],
        "unit": unit,
        "passed": bool(ok(ratio["median"])),
    }


def _throughput_ratio(
    results: dict[str, Any], set_name: str, numerator: str, denominator: str
) -> dict[str, float] | None:
    per_system = results.get("throughput", {}).get(set_name, {})
    if numerator not in per_system or denominator not in per_system:
        return None
    ratios = paired_ratios(per_system[numerator]["texts_per_s"], per_system[denominator]["texts_per_s"])
    return summarize(ratios).as_dict() if ratios else None


def _field(results: dict[str, Any], section: str, system: str, key: str) -> dict[str, float] | None:
    value = results.get(section, {}).get(system, {}).get(key)
    return value if isinstance(value, dict) else None


def _within(tolerance: float) -> Callable[[float], bool]:
    return lambda delta: abs(delta) <= tolerance


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target with its measured ratio and a pass/fail mark (None when a figure is missing)."""
    rows: list[dict[str, Any]] = []
    for variant in TARGET_VARIANTS:
        edge = edge_key(variant)
        for set_name in SETS:
            rows.append(
                _target(
                    f"{edge} throughput on {set_name} vs model2vec",
                    _throughput_ratio(results, set_name, edge, REFERENCE),
                    ">= 1.3x",
                    lambda r: r >= 1.3,
                )
            )
            rows.append(
                _target(
                    f"{edge} throughput on {set_name} vs fastembed",
                    _throughput_ratio(results, set_name, edge, FASTEMBED),
                    ">= 2x",
                    lambda r: r >= 2.0,
                )
            )
            rows.append(
                _target(
                    f"{edge} time on {set_name} vs bare tokenizer pass",
                    _throughput_ratio(results, set_name, FLOOR, edge),
                    "<= 1.25x",
                    lambda r: r <= 1.25,
                )
            )
    for variant in TARGET_VARIANTS:
        edge = edge_key(variant)
        rows.append(
            _target(
                f"{edge} single-text latency p50 vs model2vec",
                _field(results, "latency", edge, "p50_ratio_to_model2vec"),
                "<= 0.5x",
                lambda r: r <= 0.5,
            )
        )
    for variant in TARGET_VARIANTS:
        edge = edge_key(variant)
        rows.append(
            _target(
                f"{edge} cold start vs model2vec",
                _field(results, "coldstart", edge, "ratio_to_model2vec"),
                "<= 0.5x",
                lambda r: r <= 0.5,
            )
        )
    rows.append(
        _target(
            f"{edge_key('int8')} peak RSS vs model2vec",
            _field(results, "peak_rss", edge_key("int8"), "ratio_to_model2vec"),
            "<= 0.5x",
            lambda r: r <= 0.5,
        )
    )
    quality = results.get("quality", {})
    for variant, tolerance in (("fp32", 0.0005), ("int8", 0.002)):
        metrics = quality.get(edge_key(variant))
        delta = None if metrics is None else metrics["ndcg@10_delta_to_model2vec"]
        ratio = None if delta is None else {"median": delta, "min": delta, "max": delta}
        rows.append(
            _target(
                f"{edge_key(variant)} nDCG@10 minus model2vec's",
                ratio,
                f"within +/-{tolerance}",
                _within(tolerance),
                unit="",
            )
        )
    return rows
