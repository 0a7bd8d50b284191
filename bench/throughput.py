"""In-process timings: throughput on whole text sets and single-text latency, systems alternating A/B/A/B."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from bench.stats import PERCENTILES, Progress, paired_ratios, summarize
from bench.systems import LAGHU, REFERENCE, System


@contextmanager
def _no_gc() -> Iterator[None]:
    """Collect, then keep the cyclic garbage collector out of the timed region (as `timeit` does)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rotated(systems: Sequence[System], shift: int) -> list[System]:
    """The systems in turn, starting at a different one each round, so no system always runs first."""
    shift %= len(systems)
    return list(systems[shift:]) + list(systems[:shift])


def warm_up(systems: Sequence[System], sets: dict[str, list[str]], texts: int = 256, calls: int = 50) -> None:
    """Untimed calls so that first-call costs (allocators, arenas, lazy imports) stay out of the figures."""
    for system in systems:
        for texts_of_set in sets.values():
            system.encode(system.prepare(texts_of_set[:texts]))
        queries = system.prepare(next(iter(sets.values()))[:calls])
        for text in queries:
            system.encode([text])


def measure_throughput(
    systems: Sequence[System], sets: dict[str, list[str]], repeat: int, progress: Progress = None
) -> dict[str, dict[str, Any]]:
    """Texts per second of each system on each text set, `repeat` rounds of every system in turn.

    :return: per set, per system: the samples (texts/s), their summary and the ratios to model2vec paired by round.
    """
    prepared = {s.key: {name: s.prepare(texts) for name, texts in sets.items()} for s in systems}
    samples: dict[str, dict[str, list[float]]] = {name: {s.key: [] for s in systems} for name in sets}
    for round_index in range(repeat):
        for set_index, name in enumerate(sets):
            for system in _rotated(systems, round_index + set_index):
                texts = prepared[system.key][name]
                with _no_gc():
                    start = time.perf_counter()
                    system.encode(texts)
                    elapsed = time.perf_counter() - start
                samples[name][system.key].append(len(texts) / elapsed)
        if progress is not None:
            progress(f"throughput round {round_index + 1}/{repeat}")
    results: dict[str, dict[str, Any]] = {}
    for name, per_system in samples.items():
        results[name] = {
            key: {
                "texts_per_s": values,
                "summary": summarize(values).as_dict(),
                "ratio_to_model2vec": summarize(paired_ratios(values, per_system[REFERENCE])).as_dict(),
                "ratio_to_laghu": _ratio(values, per_system.get(LAGHU)),
            }
            for key, values in per_system.items()
        }
    return results


def _ratio(values: list[float], peer: list[float] | None) -> dict[str, Any] | None:
    """The summary of `values` over the peer's, paired by round; None when the peer was not measured."""
    return None if peer is None else summarize(paired_ratios(values, peer)).as_dict()


def measure_latency(
    systems: Sequence[System], texts: list[str], repeat: int, progress: Progress = None
) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Single-text latency: one text per call, every system in turn for each text, `repeat` passes over `texts`.

    :return: per system the p50 of each pass, the summaries of p50 and p99 (microseconds), their ratios to
        model2vec's (and p50's to laghu's) paired by pass and the percentiles of each pass; and per system all
        per-call samples (for the chart).
    """
    prepared = {s.key: s.prepare(texts) for s in systems}
    p50: dict[str, list[float]] = {s.key: [] for s in systems}
    p99: dict[str, list[float]] = {s.key: [] for s in systems}
    spread: dict[str, list[dict[str, float]]] = {s.key: [] for s in systems}
    everything: dict[str, list[np.ndarray]] = {s.key: [] for s in systems}
    clock = time.perf_counter_ns
    for pass_index in range(repeat):
        calls = {s.key: np.empty(len(texts), dtype=np.float64) for s in systems}
        with _no_gc():
            for index in range(len(texts)):
                for system in _rotated(systems, index + pass_index):
                    one = [prepared[system.key][index]]
                    start = clock()
                    system.encode(one)
                    calls[system.key][index] = (clock() - start) / 1000.0
        for key, micros in calls.items():
            p50[key].append(float(np.percentile(micros, 50)))
            p99[key].append(float(np.percentile(micros, 99)))
            points = {f"p{q:g}": float(np.percentile(micros, q)) for q in PERCENTILES}
            spread[key].append(points | {"max": float(micros.max())})
            everything[key].append(micros)
        if progress is not None:
            progress(f"latency pass {pass_index + 1}/{repeat}")
    results = {
        key: {
            "p50_us": summarize(p50[key]).as_dict(),
            "p50_us_per_pass": p50[key],
            "p99_us": summarize(p99[key]).as_dict(),
            "p50_ratio_to_model2vec": summarize(paired_ratios(p50[key], p50[REFERENCE])).as_dict(),
            "p99_ratio_to_model2vec": summarize(paired_ratios(p99[key], p99[REFERENCE])).as_dict(),
            "p50_ratio_to_laghu": _ratio(p50[key], p50.get(LAGHU)),
            "percentiles_per_pass_us": spread[key],
            "calls_per_pass": len(texts),
        }
        for key in p50
    }
    return results, {key: np.concatenate(values) for key, values in everything.items()}
