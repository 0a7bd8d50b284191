"""Shared fixtures: tiny Model2Vec models built in tests, the shipped potion-base-8M bundle, the Debian texts.

Everything expensive is session-scoped and built lazily, so a test run only pays for what it uses.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import ALL_VARIANTS, EDGE_TEXTS, Figures, TinyModels, model2vec_reference

REPO = Path(__file__).resolve().parents[1]
POTION_SOURCE = REPO / "models" / "potion-base-8M"
DEBIAN_CANDIDATES = (
    REPO.parent / "shared" / "data" / "debian-descriptions-public.jsonl",
    REPO / "bench" / "data" / "debian-descriptions-public.jsonl",
)
MULTILINGUAL_CANDIDATES = (
    REPO.parent / "shared" / "data" / "debian-descriptions-multilingual-public.jsonl",
    REPO / "bench" / "data" / "debian-descriptions-multilingual-public.jsonl",
)
PARITY_FIGURES_FILE = Path(
    os.environ.get("M2V_EDGE_PARITY_FIGURES") or Path(tempfile.gettempdir()) / "parity_figures.txt"
)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def potion_source() -> Path:
    assert (POTION_SOURCE / "model.safetensors").is_file(), f"the shipped model is missing: {POTION_SOURCE}"
    return POTION_SOURCE


@pytest.fixture(scope="session")
def potion_bundle(tmp_path_factory: pytest.TempPathFactory, potion_source: Path) -> Path:
    """potion-base-8M exported with all three variants (read-only: copy it before changing anything)."""
    from m2v_edge.export import export_model

    return export_model(potion_source, tmp_path_factory.mktemp("potion") / "bundle", variants=ALL_VARIANTS)


@pytest.fixture(scope="session")
def potion_int4_bundle(tmp_path_factory: pytest.TempPathFactory, potion_source: Path) -> Path:
    """potion-base-8M exported with the int4 variant only (read-only)."""
    from m2v_edge.export import export_model

    return export_model(potion_source, tmp_path_factory.mktemp("potion_int4") / "bundle", variants=("int4",))


@pytest.fixture(scope="session")
def debian_texts() -> list[str]:
    """The 16,000 public Debian texts: 8,000 synopses (queries) then 8,000 long descriptions (documents)."""
    path = next((p for p in DEBIAN_CANDIDATES if p.is_file()), None)
    assert path is not None, f"Debian texts not found in {', '.join(map(str, DEBIAN_CANDIDATES))}"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [row["query"] for row in rows] + [row["document"] for row in rows]
    assert len(texts) == 16_000
    return texts


@pytest.fixture(scope="session")
def multilingual_texts() -> list[str]:
    """The 7,657 public multilingual Debian pairs (ja, zh_CN, ko, ru, de, fr, es, it, pt_BR, pl): queries, then
    documents."""
    path = next((p for p in MULTILINGUAL_CANDIDATES if p.is_file()), None)
    assert path is not None, f"multilingual texts not found in {', '.join(map(str, MULTILINGUAL_CANDIDATES))}"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 7_657
    return [row["query"] for row in rows] + [row["document"] for row in rows]


@pytest.fixture(scope="session")
def tokenlearn_source() -> Path:
    """The real multilingual Model2Vec model of the PyPI package tokenlearn-static-model: a 276k-piece Unigram
    (Precompiled normalizer, WhitespaceSplit + Metaspace), an int8 10,000 x 64 table with mapping and weights."""
    from bench.multilingual_model import tokenlearn_tokenizer_file

    return tokenlearn_tokenizer_file().parent


@pytest.fixture(scope="session")
def tokenlearn_bundle(tmp_path_factory: pytest.TempPathFactory, tokenlearn_source: Path) -> Path:
    """tokenlearn-static-model exported with fp32 and int8 (read-only)."""
    from m2v_edge.export import export_model

    return export_model(tokenlearn_source, tmp_path_factory.mktemp("tokenlearn") / "bundle", variants=("fp32", "int8"))


@pytest.fixture(scope="session")
def potion_reference(potion_source: Path, debian_texts: list[str]) -> tuple[list[str], np.ndarray]:
    """All Debian texts plus the edge cases (and potion's own unk token), with model2vec's vectors."""
    texts = [*debian_texts, *EDGE_TEXTS.values(), "[UNK]", "[UNK] [UNK]", "[CLS] [SEP] [PAD]"]
    return texts, model2vec_reference(potion_source, texts)


class ParityLog:
    """Measured parity figures, printed at the end of the run and written to `PARITY_FIGURES_FILE`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def record(self, label: str, figures: Figures) -> None:
        self.lines.append(figures.line(label))


@pytest.fixture(scope="session")
def parity_log() -> Iterator[ParityLog]:
    log = ParityLog()
    yield log
    if log.lines:
        PARITY_FIGURES_FILE.write_text("\n".join(log.lines) + "\n", encoding="utf-8")
        _SUMMARY.extend(log.lines)


_SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SUMMARY:
        terminalreporter.section("m2v-edge parity vs model2vec 0.10")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(also written to {PARITY_FIGURES_FILE})")
