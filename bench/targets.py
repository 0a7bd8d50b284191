"""The targets of issues 3 and 16, checked against one run's figures (ratios paired by round, medians over rounds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.multilingual import LARGE, TOKENLEARN
from bench.stats import paired_ratios, summarize
from bench.systems import FASTEMBED, FLOOR, LAGHU, LAGHU_RS_PATH, REFERENCE, edge_key

TARGET_VARIANTS = ("fp32", "int8")
SETS = ("queries", "documents")
NON_ASCII_SETS = ("queries, non-ASCII", "documents, non-ASCII")
"""The English sets with non-ASCII characters mixed in (`bench.nonascii`), measured with the plain ones."""
MULTILINGUAL_MODELS = (TOKENLEARN, LARGE)
ZERO_2W_PEAK_MIB = 250.0
ZERO_2W_PRIVATE_MIB = 100.0


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
    """Every target of issue 3 with its measured ratio and a pass/fail mark (None when a figure is missing)."""
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
    rows += _coldstart(results)
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


def _coldstart(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Cold start <= 0.5x model2vec's: a target of issue 3 that issue 16 keeps."""
    return [
        _target(
            f"{edge} cold start vs model2vec",
            _field(results, "coldstart", edge, "ratio_to_model2vec"),
            *_at_most(0.5),
        )
        for edge in map(edge_key, TARGET_VARIANTS)
    ]


def _at_least(bound: float) -> tuple[str, Callable[[float], bool]]:
    return f">= {bound:g}x", lambda r: r >= bound


def _at_most(bound: float, unit: str = "x") -> tuple[str, Callable[[float], bool]]:
    return f"<= {bound:g}{' ' if unit != 'x' else ''}{unit}", lambda r: r <= bound


def _english_against_laghu(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        _target(
            f"{edge} throughput on English {set_name} vs laghu",
            _throughput_ratio(results, set_name, edge, LAGHU),
            *_at_least(1.2),
        )
        for edge in map(edge_key, TARGET_VARIANTS)
        for set_name in SETS + NON_ASCII_SETS
    ]
    rows += [
        _target(
            f"{edge} single-text latency p50 vs laghu",
            _field(results, "latency", edge, "p50_ratio_to_laghu"),
            *_at_most(1.0),
        )
        for edge in map(edge_key, TARGET_VARIANTS)
    ]
    return rows + _coldstart(results)


def _multilingual(results: dict[str, Any]) -> list[dict[str, Any]]:
    models = results.get("multilingual", {}).get("models", {})
    rows = [
        _target(
            f"{model}: {edge} throughput on multilingual {set_name} vs {peer}",
            _throughput_ratio(models.get(model, {}), set_name, edge, peer),
            *(_at_least(4.0) if peer == REFERENCE else ("> 1x", lambda r: r > 1.0)),
        )
        for model in MULTILINGUAL_MODELS
        for edge in map(edge_key, TARGET_VARIANTS)
        for set_name in SETS
        for peer in (REFERENCE, LAGHU, LAGHU_RS_PATH)
    ]
    first = (models.get(MULTILINGUAL_MODELS[1], {}).get("zero_2w_pair") or {}).get("first process", {})
    for figure, bound, label in (
        ("peak_mib", ZERO_2W_PEAK_MIB, "peak RSS"),
        ("private_mib", ZERO_2W_PRIVATE_MIB, "private memory (RssAnon)"),
    ):
        summary = first.get(figure)
        rows.append(
            _target(
                f"500k int8 on raspberry-pi-zero-2w, all documents in one call: {label}",
                None if summary is None else {k: summary[k] for k in ("median", "min", "max")},
                *_at_most(bound, "MiB"),
                unit="MiB",
            )
        )
    return rows


def evaluate_native_core(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every speed and memory target of issue 16 (items 3 and 4), with a pass/fail mark (None when not measured).

    "Ahead of laghu" on the multilingual models is checked against laghu as it loads each model and against laghu on
    its laghu-rs path (`bench.multilingual.laghu_rs_copy`), which it would take on potion-multilingual-128M itself.
    """
    return _english_against_laghu(results) + _multilingual(results)
