"""Issue 16's targets as bench/targets.py checks them, on hand-made figures."""

from __future__ import annotations

from typing import Any

from bench.targets import evaluate_native_core


def _rows(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["target"]: row for row in evaluate_native_core(results)}


def _english(edge_rates: list[float], laghu_rates: list[float]) -> dict[str, Any]:
    sets = ("queries", "documents", "queries, non-ASCII", "documents, non-ASCII")
    per_system = {
        "m2v-edge fp32": {"texts_per_s": edge_rates},
        "m2v-edge int8": {"texts_per_s": edge_rates},
        "laghu": {"texts_per_s": laghu_rates},
    }
    return {"throughput": {name: per_system for name in sets}}


def test_throughput_against_laghu_is_the_median_of_ratios_paired_by_round() -> None:
    # rounds 130/100, 110/100, 150/100: ratios 1.3, 1.1, 1.5
    rows = _rows(_english([130.0, 110.0, 150.0], [100.0, 100.0, 100.0]))
    row = rows["m2v-edge fp32 throughput on English queries vs laghu"]
    assert (row["measured"], row["min"], row["max"], row["passed"]) == (1.3, 1.1, 1.5, True)
    # rounds 240/200, 100/100, 150/100: ratios 1.2, 1.0, 1.5, median 1.2 (the medians of the rates give 1.5)
    rows = _rows(_english([240.0, 100.0, 150.0], [200.0, 100.0, 100.0]))
    assert rows["m2v-edge int8 throughput on English documents, non-ASCII vs laghu"]["measured"] == 1.2
    rows = _rows(_english([119.0], [100.0]))
    assert rows["m2v-edge int8 throughput on English queries, non-ASCII vs laghu"]["passed"] is False


def test_latency_cold_start_and_multilingual_rows_without_figures_are_not_measured() -> None:
    rows = _rows({})
    for name in (
        "m2v-edge fp32 single-text latency p50 vs laghu",
        "m2v-edge int8 cold start vs model2vec",
        "500k Unigram: m2v-edge int8 throughput on multilingual documents vs laghu",
        "tokenlearn-static-model: m2v-edge fp32 throughput on multilingual queries vs model2vec",
        "500k int8 on raspberry-pi-zero-2w, all documents in one call: peak RSS",
    ):
        assert rows[name]["measured"] is None and rows[name]["passed"] is None, name


def test_multilingual_speed_needs_4x_model2vec_and_more_than_laghu() -> None:
    figures = {
        "throughput": {
            name: {
                "m2v-edge fp32": {"texts_per_s": [400.0]},
                "m2v-edge int8": {"texts_per_s": [390.0]},
                "model2vec": {"texts_per_s": [100.0]},
                "laghu": {"texts_per_s": [400.0]},
            }
            for name in ("queries", "documents")
        }
    }
    rows = _rows({"multilingual": {"models": {"tokenlearn-static-model": figures}}})
    prefix = "tokenlearn-static-model: m2v-edge"
    assert rows[f"{prefix} fp32 throughput on multilingual queries vs model2vec"]["passed"] is True  # 4.0x
    assert rows[f"{prefix} int8 throughput on multilingual queries vs model2vec"]["passed"] is False  # 3.9x
    assert rows[f"{prefix} fp32 throughput on multilingual documents vs laghu"]["passed"] is False  # level, not ahead


def test_zero_2w_memory_is_checked_on_the_first_process_in_mib() -> None:
    pair = {
        "first process": {
            "peak_mib": {"median": 251.0, "min": 249.0, "max": 260.0},
            "private_mib": {"median": 99.5, "min": 99.0, "max": 101.0},
        },
        "second process": {
            "peak_mib": {"median": 1.0, "min": 1.0, "max": 1.0},
            "private_mib": {"median": 1.0, "min": 1.0, "max": 1.0},
        },
    }
    rows = _rows({"multilingual": {"models": {"500k Unigram": {"zero_2w_pair": pair}}}})
    peak = rows["500k int8 on raspberry-pi-zero-2w, all documents in one call: peak RSS"]
    private = rows["500k int8 on raspberry-pi-zero-2w, all documents in one call: private memory (RssAnon)"]
    assert (peak["measured"], peak["required"], peak["passed"]) == (251.0, "<= 250 MiB", False)
    assert (private["measured"], private["required"], private["passed"]) == (99.5, "<= 100 MiB", True)
