"""Session fixtures for the packaging tests: one build of the distributions, one wheelhouse, shared clean venvs.

`dist` does what `make dist` does (sdist and x86-64 wheel with `python -m build`, the aarch64 wheel cross-compiled
from the sdist by scripts/arm64/build_wheel.sh, then potion-base-8M exported with int8 and fp16 and packaged as a
model wheel) into a temporary folder. `wheelhouse` is filled once per session
from the configured package index (the local mirror in CI); every clean venv installs from it with
`pip install --no-index`. Sizes and the commands run in clean venvs are printed at the end of the run and
written to `$TMPDIR/packaging_report.txt` (or `$M2V_EDGE_PACKAGING_REPORT`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from clean_venvs import CleanVenv
from pkg_support import MODEL_DISTRIBUTION, POTION, REPO, REPORT, REPORT_FILE, SHIPPED_VARIANTS, Dist, Report, run_host


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """`make dist` into a temporary folder: `python -m build`, the aarch64 wheel, then the shipped model as a model
    wheel."""
    from m2v_edge.export import export_model
    from m2v_edge.model_wheel import build_model_wheel

    folder = tmp_path_factory.mktemp("dist")
    run_host(sys.executable, "-m", "build", "--outdir", folder, REPO)
    (wheel,) = folder.glob("m2v_edge-*.whl")
    (sdist,) = folder.glob("m2v_edge-*.tar.gz")
    run_host("bash", REPO / "scripts" / "arm64" / "build_wheel.sh", sdist, folder, env={"HOST_PYTHON": sys.executable})
    (aarch64_wheel,) = folder.glob("m2v_edge-*_aarch64.whl")
    bundle = export_model(POTION, tmp_path_factory.mktemp("export") / "potion-base-8M", variants=SHIPPED_VARIANTS)
    model_wheel = build_model_wheel(bundle, folder, name="potion-base-8M")
    return Dist(
        folder=folder, wheel=wheel, aarch64_wheel=aarch64_wheel, sdist=sdist, model_wheel=model_wheel, bundle=bundle
    )


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, dist: Dist) -> Path:
    """Both wheels and every dependency of m2v-edge[export,milvus,serve], downloaded once (`pip download`), and
    setuptools, which pip needs to build m2v-edge from its sdist without an index."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    run_host(sys.executable, "-m", "pip", "download", "--quiet", "-d", folder, f"{dist.wheel}[export,milvus,serve]",
             dist.model_wheel, "setuptools>=77")
    return folder


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> CleanVenv:
    """A fresh venv with m2v-edge (no extras) and the potion-base-8M model package, installed offline."""
    env = CleanVenv(tmp_path_factory.mktemp("base") / "venv", "no extras", REPORT.transcript)
    env.install(wheelhouse, "m2v-edge", MODEL_DISTRIBUTION)
    return env


@pytest.fixture(scope="session")
def potion_vectors(dist: Dist) -> tuple[list[str], np.ndarray]:
    """Texts and their int8 vectors computed here, from the bundle the model wheel was made of."""
    from m2v_edge import EdgeEmbedder

    texts = ["a fast text editor", "", "library for parsing XML documents", "日本語のテキスト"]
    return texts, EdgeEmbedder(dist.bundle, variant="int8", profile="generic").encode(texts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (REPORT.sizes or REPORT.transcript.lines):
        return
    lines = ["sizes:", *(f"  {line}" for line in REPORT.sizes), "clean-venv checks:", *REPORT.transcript.lines]
    REPORT_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    terminalreporter.section("m2v-edge packaging")
    for line in lines[: 1 + len(REPORT.sizes)]:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(clean-venv transcript: {len(REPORT.transcript.lines)} lines in {REPORT_FILE})")
