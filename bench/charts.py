"""PNG charts of a run: throughput bars and the single-text latency distribution (matplotlib, the `bench` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def throughput_chart(throughput: dict[str, dict[str, Any]], title: str, path: Path) -> Path:
    """Bars of texts/s per system, one panel per text set, two panels a row; whiskers span min to max over rounds."""
    plt = _pyplot()
    systems = list(throughput["queries"])
    sets = list(throughput)
    columns = min(2, len(sets))
    rows = -(-len(sets) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, sets, strict=False):
        summaries = [throughput[name][key]["summary"] for key in systems]
        medians = np.array([s["median"] for s in summaries])
        errors = np.array([[s["median"] - s["min"] for s in summaries], [s["max"] - s["median"] for s in summaries]])
        colors = [
            "#d62728"
            if key == "model2vec"
            else "#7f7f7f"
            if "floor" in key
            else "#1f77b4"
            if key.startswith("m2v-edge")
            else "#2ca02c"
            if key == "laghu"
            else "#ff7f0e"
            for key in systems
        ]
        bars = ax.bar(range(len(systems)), medians, yerr=errors, capsize=3, color=colors)
        ax.bar_label(bars, labels=[f"{m:,.0f}" for m in medians], fontsize=7, padding=2)
        ax.set_xticks(range(len(systems)), systems, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("texts/s (median, min-max)")
        ax.set_title(name)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def latency_chart(samples: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Empirical CDF of per-call latency (log scale) per system, p50 and p99 marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, micros in samples.items():
        ordered = np.sort(micros)
        ax.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=key, linewidth=1.2)
    ax.axhline(0.5, color="#bbbbbb", linewidth=0.7, linestyle=":")
    ax.axhline(0.99, color="#bbbbbb", linewidth=0.7, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("microseconds per call (one text), log scale")
    ax.set_ylabel("fraction of calls")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
