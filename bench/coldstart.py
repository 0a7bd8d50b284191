"""Subprocess figures: cold start (spawn to first vector), and peak RSS and private memory while encoding documents.

Each figure comes from fresh `python bench/child.py` processes, every system in turn within a round. One untimed
round runs first so that every system meets a warm page cache (and m2v-edge its bundle-verification stamp): the
figures are warm-disk cold starts, the case of a service restarting on a device that already holds the model.
m2v-edge's byte code is compiled first (`compile_installed_bytecode`), as pip compiles every package it installs.
"""

from __future__ import annotations

import compileall
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.stats import Progress, paired_ratios, summarize
from bench.systems import REFERENCE

CHILD = Path(__file__).with_name("child.py")
TIMEOUT_S = 600.0


class ChildError(RuntimeError):
    """A child process failed; the message carries its stderr."""


def _last_line(stderr: str) -> str:
    """The last line of a child's stderr: for a Python traceback, the exception itself."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "(no stderr)"


def compile_installed_bytecode() -> None:
    """Write m2v-edge's `.pyc` files, as `pip install` does for every package it installs.

    The benchmark runs m2v-edge from an editable install, whose modules Python compiles from source in every fresh
    process when `PYTHONDONTWRITEBYTECODE` is set (as on this project's machines): 20-30 ms that no installed
    package, the peers included, pays.
    """
    import m2v_edge

    compileall.compile_dir(Path(m2v_edge.__file__).parent, quiet=1)


def run_child(mode: str, system: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Spawn one child and return its report plus `spawned`, the parent's `time.monotonic()` just before spawning."""
    argv = [sys.executable, str(CHILD), mode, system, json.dumps(dict(spec))]
    spawned = time.monotonic()
    # env is passed explicitly: after tokenizers has used its thread pool, its fork handler would otherwise switch
    # TOKENIZERS_PARALLELISM off in the inherited environment and the children would tokenize on one thread.
    done = subprocess.run(
        argv, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise ChildError(f"{system} ({mode}) exited with {done.returncode}: {_last_line(done.stderr)}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ChildError(f"{system} ({mode}) printed no report; stderr: {_last_line(done.stderr)}")
    report = json.loads(lines[-1])
    report["spawned"] = spawned
    return report


def _rounds(
    mode: str, systems: Sequence[str], spec: Mapping[str, Any], env: Mapping[str, str], repeat: int, progress: Progress
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """One untimed round, then `repeat` rounds of every system in turn (rotating the order); failures are recorded."""
    reports: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    failed: dict[str, str] = {}
    for round_index in range(-1, repeat):
        shift = max(round_index, 0) % len(systems)
        for system in list(systems[shift:]) + list(systems[:shift]):
            if system in failed:
                continue
            try:
                report = run_child(mode, system, spec, env)
            except (ChildError, subprocess.TimeoutExpired) as exc:
                failed[system] = str(exc)
                continue
            if round_index >= 0:
                reports[system].append(report)
        if progress is not None and round_index >= 0:
            progress(f"{mode} round {round_index + 1}/{repeat}")
    return {s: r for s, r in reports.items() if s not in failed and r}, failed


def measure_coldstart(
    systems: Sequence[str], spec: Mapping[str, Any], env: Mapping[str, str], repeat: int, progress: Progress = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Seconds from spawn to the first vector, split into interpreter start, import, load and first encode."""
    reports, failed = _rounds("coldstart", systems, spec, env, repeat, progress)
    results: dict[str, Any] = {}
    totals = {s: [r["encoded"] - r["spawned"] for r in rs] for s, rs in reports.items()}
    for system, runs in reports.items():
        parts = {
            "interpreter_s": [r["started"] - r["spawned"] for r in runs],
            "import_s": [r["imported"] - r["before_import"] for r in runs],
            "load_s": [r["loaded"] - r["imported"] for r in runs],
            "first_vector_s": [r["encoded"] - r["loaded"] for r in runs],
        }
        results[system] = {
            "seconds": totals[system],
            "summary": summarize(totals[system]).as_dict(),
            "parts": {name: summarize(values).as_dict() for name, values in parts.items()},
            "max_rss_mib": summarize([r["max_rss_kib"] / 1024 for r in runs]).as_dict(),
            "tokenizers_parallelism": runs[0]["tokenizers_parallelism"],
        }
        if REFERENCE in totals and len(totals[REFERENCE]) == len(totals[system]):
            results[system]["ratio_to_model2vec"] = summarize(
                paired_ratios(totals[system], totals[REFERENCE])
            ).as_dict()
    return results, failed


def measure_peak_rss(
    systems: Sequence[str], spec: Mapping[str, Any], env: Mapping[str, str], repeat: int, progress: Progress = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Peak RSS and private memory (`RssAnon` after the call), in MiB, of a process that loads the model and encodes
    the corpus documents in one call."""
    reports, failed = _rounds("rss", systems, spec, env, repeat, progress)
    results: dict[str, Any] = {}
    peaks = {s: [r["max_rss_kib"] / 1024 for r in rs] for s, rs in reports.items()}
    private = {s: [r["rss_anon_kib"] / 1024 for r in rs if r["rss_anon_kib"] is not None] for s, rs in reports.items()}
    for system, runs in reports.items():
        results[system] = {
            "peak_mib": peaks[system],
            "summary": summarize(peaks[system]).as_dict(),
            "private_mib": summarize(private[system]).as_dict() if private[system] else None,
            "before_import_mib": summarize([r["baseline_max_rss_kib"] / 1024 for r in runs]).as_dict(),
            "encode_s": summarize([r["encoded"] - r["loaded"] for r in runs]).as_dict(),
            "texts": runs[0]["texts"],
            "outputs": runs[0]["outputs"],
        }
        if REFERENCE in peaks and len(peaks[REFERENCE]) == len(peaks[system]):
            results[system]["ratio_to_model2vec"] = summarize(paired_ratios(peaks[system], peaks[REFERENCE])).as_dict()
    return results, failed
