"""On-device tuning: measure a grid of (threads, variant, token budget) and keep the best as a user profile.

Each setting runs in its own Python process (`m2v_edge.device_profiles._tune_worker`), so that its peak
memory is its own: the figure reported is the worker's peak resident set size (VmHWM, the kernel's high-water
mark of the whole process: interpreter, onnxruntime/tokenizers/numpy, the loaded bundle and the encoding
itself). Separate processes also keep thread pools and allocator state from leaking between settings.

This module imports the runtime only inside the worker; `m2v_edge.device_profiles` itself stays stdlib-only.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from m2v_edge.bundle import VARIANTS, read_manifest
from m2v_edge.device_profiles.detect import fit_to_machine, resolve_profile
from m2v_edge.device_profiles.facts import MachineFacts, read_facts
from m2v_edge.device_profiles.profile import MatchRules, Profile
from m2v_edge.device_profiles.store import render_profile
from m2v_edge.errors import M2VEdgeError

logger = logging.getLogger(__name__)

Objective = Literal["throughput", "latency", "memory"]
OBJECTIVES: tuple[str, ...] = ("throughput", "latency", "memory")
DEFAULT_TOKEN_BUDGETS = (1024, 4096, 16384)
BATCH_TEXTS = 1000
"""Texts per throughput call: the corpus repeated, about 15,000 tokens, so that budgets up to 16K matter."""
NEAR_BEST = 0.05
"""Settings within 5 % of the best objective value count as equal; the smaller footprint then wins."""


class TuneError(M2VEdgeError):
    """Tuning could not measure any setting."""


@dataclass(frozen=True)
class TuneSetting:
    """One point of the grid."""

    threads: int
    variant: str
    token_budget: int


@dataclass(frozen=True)
class TuneResult:
    """What one setting measured; `error` is set (and the figures are zero) when its worker failed."""

    setting: TuneSetting
    texts_per_second: float
    latency_p50_ms: float
    peak_rss_mb: float | None
    """Peak RSS of the worker process in MiB; None when measured in-process (`isolate=False`)."""
    load_seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class TuneGrid:
    """The values to combine; every combination is measured."""

    threads: tuple[int, ...]
    variants: tuple[str, ...]
    token_budgets: tuple[int, ...]

    def settings(self) -> list[TuneSetting]:
        return [
            TuneSetting(threads, variant, budget)
            for variant in self.variants
            for threads in self.threads
            for budget in self.token_budgets
        ]


def corpus_texts() -> list[str]:
    """The built-in tuning corpus: 200 varied English sentences and paragraphs, one per line."""
    text = resources.files("m2v_edge.device_profiles").joinpath("tune_corpus.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def default_grid(bundle: str | Path, facts: MachineFacts | None = None) -> TuneGrid:
    """1, 2, 4 threads and the CPU limit (no more than the limit), every variant of the bundle, three budgets."""
    facts = read_facts() if facts is None else facts
    limit = facts.cpu_limit or 4
    threads = sorted({count for count in (1, 2, 4, limit) if count <= limit})
    available = read_manifest(Path(bundle)).variants
    variants = tuple(variant for variant in VARIANTS if variant in available)
    return TuneGrid(tuple(threads), variants, DEFAULT_TOKEN_BUDGETS)


def _check_grid(grid: TuneGrid, bundle: Path) -> None:
    available = read_manifest(bundle).variants
    for variant in grid.variants:
        if variant not in available:
            raise ValueError(f"bundle {bundle} has no variant {variant!r}; it has {', '.join(available)}")
    if not grid.threads or not grid.variants or not grid.token_budgets:
        raise ValueError("the tuning grid needs at least one thread count, variant and token budget")
    if min(grid.threads) < 1 or min(grid.token_budgets) < 1:
        raise ValueError("thread counts and token budgets must be >= 1")


def _worker_env() -> dict[str, str]:
    """The environment for workers: this m2v_edge importable even when it is not installed."""
    import m2v_edge

    env = dict(os.environ)
    package_parent = str(Path(m2v_edge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    env.pop("M2V_EDGE_PROFILE", None)  # the worker is given its profile explicitly
    return env


def _run_isolated(job: dict[str, object], workdir: Path, timeout: float) -> dict[str, object]:
    job_path, result_path = workdir / "job.json", workdir / "result.json"
    result_path.unlink(missing_ok=True)
    job_path.write_text(json.dumps(dict(job, result=str(result_path))), encoding="utf-8")
    command = [sys.executable, "-m", "m2v_edge.device_profiles._tune_worker", str(job_path)]
    try:
        completed = subprocess.run(
            command, env=_worker_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if completed.returncode != 0 or not result_path.exists():
        lines = (completed.stderr or "").strip().splitlines()
        return {"error": f"worker exited with {completed.returncode}: {lines[-1] if lines else 'no message'}"}
    return json.loads(result_path.read_text(encoding="utf-8"))


def tune(
    bundle: str | Path,
    grid: TuneGrid | None = None,
    texts: Sequence[str] | None = None,
    *,
    profile: str | Path | Profile | None = "auto",
    batch_texts: int = BATCH_TEXTS,
    min_seconds: float = 1.0,
    latency_samples: int = 50,
    isolate: bool = True,
    timeout: float = 600.0,
    progress: Callable[[int, int, TuneSetting, TuneResult | None], None] | None = None,
) -> list[TuneResult]:
    """Measure every setting of `grid` on `texts` (default: the built-in corpus), one process per setting.

    Throughput: texts per second encoding `batch_texts` texts per call (the texts repeated), over at least
    `min_seconds`. Latency: median of `latency_samples` single-text calls. Settings not in the grid
    (memory arena, spinning, ...) come from `profile`. `progress(done, total, setting, result)` is called
    before (result None) and after each setting.
    """
    bundle = Path(bundle)
    grid = default_grid(bundle) if grid is None else grid
    _check_grid(grid, bundle)
    texts = list(corpus_texts() if texts is None else texts)
    if not texts:
        raise ValueError("tuning needs at least one text")
    base = resolve_profile(profile)
    settings = grid.settings()
    results: list[TuneResult] = []
    with tempfile.TemporaryDirectory(prefix="m2v-edge-tune-") as tmp:
        workdir = Path(tmp)
        profile_path = workdir / "base.toml"
        profile_path.write_text(render_profile(dataclasses.replace(base, name="tune-base")), encoding="utf-8")
        for index, setting in enumerate(settings):
            if progress:
                progress(index, len(settings), setting, None)
            job: dict[str, object] = {
                "bundle": str(bundle),
                "profile": str(profile_path),
                "threads": setting.threads,
                "variant": setting.variant,
                "token_budget": setting.token_budget,
                "texts": texts,
                "batch_texts": batch_texts,
                "min_seconds": min_seconds,
                "latency_samples": latency_samples,
            }
            if isolate:
                raw = _run_isolated(job, workdir, timeout)
            else:
                from m2v_edge.device_profiles._tune_worker import measure

                raw = measure(job)
                raw["peak_rss_mb"] = None
            result = _result(setting, raw)
            if not result.ok:
                logger.warning("tuning %s failed: %s", setting, result.error)
            results.append(result)
            if progress:
                progress(index + 1, len(settings), setting, result)
    if not any(result.ok for result in results):
        raise TuneError(f"no setting could be measured; first failure: {results[0].error}")
    return results


def _result(setting: TuneSetting, raw: dict[str, object]) -> TuneResult:
    if raw.get("error"):
        return TuneResult(setting, 0.0, 0.0, None, 0.0, error=str(raw["error"]))
    peak = raw.get("peak_rss_mb")
    return TuneResult(
        setting,
        texts_per_second=float(raw["texts_per_second"]),  # type: ignore[arg-type]
        latency_p50_ms=float(raw["latency_p50_ms"]),  # type: ignore[arg-type]
        peak_rss_mb=None if peak is None else float(peak),  # type: ignore[arg-type]
        load_seconds=float(raw["load_seconds"]),  # type: ignore[arg-type]
    )


def best_result(results: Sequence[TuneResult], objective: Objective = "throughput") -> TuneResult:
    """The best measured setting: highest throughput, lowest latency or lowest peak memory.

    Settings within 5 % of the best value are treated as equal (measurements are noisy); among those the
    one with the smaller peak memory, then fewer threads, then the smaller budget wins.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    measured = [result for result in results if result.ok]
    if not measured:
        raise TuneError("no successful measurement to choose from")

    def value(result: TuneResult) -> float:  # higher is better
        if objective == "throughput":
            return result.texts_per_second
        if objective == "latency":
            return -result.latency_p50_ms
        return -(result.peak_rss_mb if result.peak_rss_mb is not None else float("inf"))

    top = max(value(result) for result in measured)
    near = [result for result in measured if value(result) >= top - abs(top) * NEAR_BEST]
    return min(
        near,
        key=lambda r: (
            r.peak_rss_mb if r.peak_rss_mb is not None else 0.0,
            r.setting.threads,
            r.setting.token_budget,
            -value(r),
        ),
    )


def tuned_profile(
    best: TuneResult,
    base: Profile,
    facts: MachineFacts | None = None,
    *,
    name: str = "tuned",
    objective: str = "throughput",
) -> Profile:
    """A profile with `best`'s settings whose match rules describe this machine, so detection prefers it."""
    facts = read_facts() if facts is None else facts
    memory = facts.memory_mb
    cpu = facts.cpu
    rules = MatchRules(
        device_tree_model=(facts.board,) if facts.board else (),
        architectures=(facts.machine,) if facts.machine != "unknown" else (),
        cpu_implementer=cpu.implementers if cpu else (),
        cpu_part=cpu.parts if cpu else (),
        cpu_model=(cpu.model_name,) if cpu and cpu.model_name and not cpu.parts else (),
        min_memory_mb=int(memory * 0.9) if memory else None,
        max_memory_mb=int(memory * 1.1) + 1 if memory else None,
    )
    setting = best.setting
    variants = (setting.variant,) + tuple(v for v in base.encoding.variants if v != setting.variant)
    session = dataclasses.replace(base.session, intra_op_threads=setting.threads)
    today = datetime.date.today().isoformat()
    description = (
        f"Tuned on this device on {today} (best {objective}, from {base.name}): {setting.threads} threads, "
        f"{setting.variant}, budget {setting.token_budget}: {best.texts_per_second:.0f} texts/s, "
        f"p50 {best.latency_p50_ms:.2f} ms"
    )
    tuned = Profile(
        name=name,
        description=description,
        match=rules,
        session=session,
        encoding=dataclasses.replace(base.encoding, variants=variants, token_budget=setting.token_budget),
        source="user",
    )
    return fit_to_machine(tuned, facts)[0]
