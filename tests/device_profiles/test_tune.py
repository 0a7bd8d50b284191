"""`tune` on a tiny grid with a real bundle, the tuned profile detection prefers, and the runtime using profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2v_edge.device_profiles import (
    explain_detection,
    load_profile,
    read_facts,
    read_profile_file,
    resolve_profile,
    write_user_profile,
)
from m2v_edge.device_profiles.tune import (
    TuneGrid,
    TuneResult,
    TuneSetting,
    best_result,
    corpus_texts,
    default_grid,
    tune,
    tuned_profile,
)

from .conftest import MakeRoot

TINY = TuneGrid(threads=(1,), variants=("int8",), token_budgets=(1024,))


def test_corpus_is_200_varied_texts() -> None:
    texts = corpus_texts()
    assert len(texts) == 200 and len(set(texts)) == 200
    lengths = sorted(len(text) for text in texts)
    assert lengths[0] < 40 and lengths[-1] > 300


def test_tune_tiny_grid_in_worker_processes(bundle: Path) -> None:
    calls: list[tuple[int, int, bool]] = []
    results = tune(
        bundle,
        TINY,
        corpus_texts()[:20],
        min_seconds=0.05,
        latency_samples=5,
        batch_texts=40,
        progress=lambda done, total, setting, result: calls.append((done, total, result is None)),
    )
    assert [r.setting for r in results] == [TuneSetting(1, "int8", 1024)]
    result = results[0]
    assert result.ok, result.error
    assert result.texts_per_second > 0 and result.latency_p50_ms > 0 and result.load_seconds > 0
    assert result.peak_rss_mb is not None and 30 < result.peak_rss_mb < 2000  # a whole Python process
    assert calls == [(0, 1, True), (1, 1, False)]


def test_tune_in_process_reports_no_peak(bundle: Path) -> None:
    results = tune(bundle, TINY, ["one text", "another text"], min_seconds=0.01, latency_samples=2, isolate=False)
    assert results[0].ok and results[0].peak_rss_mb is None


def test_tune_refuses_a_variant_the_bundle_lacks(bundle: Path) -> None:
    with pytest.raises(ValueError, match="has no variant 'fp16'; it has fp32, int8"):
        tune(bundle, TuneGrid((1,), ("fp16",), (1024,)))


@pytest.mark.parametrize(
    ("board", "cpu_max", "threads"),
    [
        ("raspberry-pi-4", None, (1, 2, 4)),  # 4 CPUs
        ("jetson-orin-nano", None, (1, 2, 4, 6)),  # 6 CPUs: the limit itself is tried too
        ("jetson-orin-nano", "300000 100000", (1, 2, 3)),  # a quota of 3 CPUs
        ("raspberry-pi-4", "150000 100000", (1,)),  # 1.5 CPUs: whole threads only
        (None, None, (1, 2, 4)),  # nothing known: up to 4
    ],
)
def test_default_grid_follows_bundle_and_cpu_limit(
    bundle: Path, make_root: MakeRoot, board: str | None, cpu_max: str | None, threads: tuple[int, ...]
) -> None:
    grid = default_grid(bundle, read_facts(make_root(board, cpu_max=cpu_max), machine="aarch64"))
    assert grid.threads == threads
    assert grid.variants == ("fp32", "int8")
    assert grid.token_budgets == (1024, 4096, 16384)
    assert len(grid.settings()) == len(threads) * 2 * 3


def _result(threads: int, variant: str, budget: int, speed: float, p50: float, peak: float | None) -> TuneResult:
    return TuneResult(TuneSetting(threads, variant, budget), speed, p50, peak, 0.1)


def test_best_result_prefers_small_footprint_among_near_equals() -> None:
    results = [
        _result(4, "fp32", 16384, 1000.0, 0.10, 140.0),
        _result(2, "int8", 4096, 980.0, 0.12, 100.0),  # within 5 %: smaller peak wins
        _result(1, "int8", 1024, 600.0, 0.08, 95.0),
        TuneResult(TuneSetting(8, "int8", 1024), 0.0, 0.0, None, 0.0, error="worker exited with 1"),
    ]
    assert best_result(results).setting == TuneSetting(2, "int8", 4096)
    assert best_result(results, "latency").setting == TuneSetting(1, "int8", 1024)
    assert best_result(results, "memory").setting == TuneSetting(1, "int8", 1024)
    with pytest.raises(ValueError, match="objective"):
        best_result(results, "speed")  # type: ignore[arg-type]


def test_tuned_profile_is_preferred_by_detection(bundle: Path, user_dir: Path) -> None:
    base = resolve_profile()
    results = tune(bundle, TINY, corpus_texts()[:10], profile=base, min_seconds=0.05, latency_samples=3, batch_texts=20)
    profile = tuned_profile(best_result(results), base, name="tuned")
    path = write_user_profile(profile)
    assert path.parent == user_dir
    saved = read_profile_file(path, source="user")
    assert saved.session.intra_op_threads == 1 and saved.encoding.variants[0] == "int8"
    assert saved.encoding.token_budget == 1024
    detection = explain_detection()
    assert (detection.chosen.name, detection.chosen.source) == ("tuned", "user")
    assert resolve_profile().name == "tuned" and load_profile("tuned").source == "user"


@pytest.mark.parametrize("base_name", ["raspberry-pi-zero-2w", "x86-64"])
def test_tuned_profile_keeps_the_base_profiles_other_encoding_settings(base_name: str) -> None:
    """Tuning measures threads, variant and budget; what it does not measure (the ASCII fast path) stays the base's."""
    base = load_profile(base_name)
    tuned = tuned_profile(_result(1, "fp32", 512, 100.0, 0.1, 90.0), base, name="tuned")
    assert tuned.encoding.ascii_fast_path == base.encoding.ascii_fast_path == (base_name == "x86-64")
    assert (tuned.encoding.variants[0], tuned.encoding.token_budget) == ("fp32", 512)


def test_runtime_applies_the_profile(bundle: Path, tmp_path: Path) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    custom = tmp_path / "custom.toml"
    custom.write_text(
        "[session]\nintra_op_threads = 1\nmem_pattern = false\ncpu_mem_arena = false\n"
        "[encoding]\nvariants = ['fp16', 'int8']\ntoken_budget = 777\n",
        encoding="utf-8",
    )
    embedder = EdgeEmbedder(bundle, profile=custom)
    assert embedder.profile.name == "custom"
    assert embedder.variant == "int8"  # the bundle has no fp16: the next preference is used
    assert embedder.token_budget == 777
    options = embedder.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.enable_mem_pattern is False and options.enable_cpu_mem_arena is False
    explicit = EdgeEmbedder(bundle, profile=custom, threads=2, variant="fp32")
    assert explicit.session.get_session_options().intra_op_num_threads == 2 and explicit.variant == "fp32"


def test_failing_worker_is_reported(bundle: Path, tmp_path: Path) -> None:
    import shutil

    from m2v_edge.device_profiles.tune import TuneError

    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    graph = broken / "model.int8.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes: the sha256 check in the worker refuses it
    graph.write_bytes(bytes(data))
    with pytest.raises(TuneError, match="no setting could be measured; first failure: worker exited with 1: .*sha256"):
        tune(broken, TINY, ["a text"], min_seconds=0.01, latency_samples=1)
