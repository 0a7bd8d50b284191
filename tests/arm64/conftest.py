"""The aarch64 parity check: runs inside the emulated aarch64 Python that `make test-arm64` starts.

These tests run m2v-edge as installed from its aarch64 wheel (in `M2V_EDGE_ARM64_INSTALLED`), and compare the
vectors computed here with the x86-64 ones that scripts/arm64/run_tests.sh wrote beforehand, and named in
`M2V_EDGE_ARM64_REFERENCE` (a folder written by `arm64_reference.py prepare`). Without that
folder there is nothing to compare with, so the plain `make test` run does not collect this directory at all;
`make test-arm64` is what runs it (and it fails if the reference is missing or stale).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from arm64_reference import REFERENCE_FILE, VARIANTS, parity_texts, reference_path, texts_digest

REFERENCE_ENV = "M2V_EDGE_ARM64_REFERENCE"
FIGURES_ENV = "M2V_EDGE_ARM64_FIGURES"
INSTALLED_ENV = "M2V_EDGE_ARM64_INSTALLED"
"""The folder run_tests.sh installed the aarch64 m2v-edge wheel into (m2v_edge must be imported from there)."""

if not os.environ.get(REFERENCE_ENV):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def native_expected() -> bool:
    """Whether this run has the native core on: run_tests.sh runs once as is and once with M2V_EDGE_NATIVE=0."""
    return os.environ.get("M2V_EDGE_NATIVE", "1") != "0"


@pytest.fixture(scope="session")
def installed_site() -> Path:
    """Where the aarch64 m2v-edge wheel was installed (set by run_tests.sh)."""
    return Path(os.environ[INSTALLED_ENV])


@dataclass(frozen=True)
class X86Reference:
    work: Path
    description: dict
    texts: list[str]
    vectors: dict[str, np.ndarray]

    @property
    def bundle(self) -> Path:
        return self.work / "bundle"


@pytest.fixture(scope="session")
def x86_reference() -> X86Reference:
    work = Path(os.environ[REFERENCE_ENV])
    description_file = work / REFERENCE_FILE
    assert description_file.is_file(), f"no x86-64 reference in {work}: run scripts/arm64/run_tests.sh"
    description = json.loads(description_file.read_text(encoding="utf-8"))
    texts = parity_texts()
    assert description["texts_sha256"] == texts_digest(texts), "the reference was computed on other texts"
    vectors = {variant: np.load(reference_path(work, variant)) for variant in VARIANTS}
    for variant, array in vectors.items():
        assert array.shape == (len(texts), 256) and array.dtype == np.float32, (variant, array.shape, array.dtype)
    return X86Reference(work=work, description=description, texts=texts, vectors=vectors)


class FigureLog:
    """Measured figures, printed at the end of the run and written to `$M2V_EDGE_ARM64_FIGURES`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def record(self, line: str) -> None:
        self.lines.append(line)


_SUMMARY: list[str] = []


@pytest.fixture(scope="session")
def figure_log() -> Iterator[FigureLog]:
    log = FigureLog()
    yield log
    if log.lines:
        target = os.environ.get(FIGURES_ENV)
        if target:
            Path(target).write_text("\n".join(log.lines) + "\n", encoding="utf-8")
        _SUMMARY.extend(log.lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SUMMARY:
        terminalreporter.section("m2v-edge on aarch64 (emulated) vs x86-64")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
