"""`m2v_edge.runtime.table.VariantTable`: a variant's arrays read from its data file with numpy, without the graph.

Its vectors are model2vec 0.10's `encode_as_sequence` vectors (fp32, every tiny model), and pooled as the graph pools
they are the graph's output (every variant, every tiny model, potion-base-8M). Hostile layouts and files are refused
before anything is mapped.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.hostile import MAPPED_SPEC, install
from helpers.tiny_models import CORPUS, PARITY_VARIANTS, TINY_SPECS, TinyModels, for_model2vec, measure, word_salads
from model2vec import StaticModel
from tokenizers import Tokenizer

from m2v_edge.bundle import ArrayEntry, read_manifest
from m2v_edge.errors import BundleError
from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.runtime.table import VariantTable

TEXTS = [*CORPUS, *(" ".join(text.split()[:3]) for text in CORPUS), *word_salads(40), "", "☃☃ ☃", "東京 café",
         "[UNK] fox [UNK]"]


def _table(bundle: Path, variant: str) -> VariantTable:
    return VariantTable(bundle, read_manifest(bundle), variant)


def _pooled(table: VariantTable, ids: list[int]) -> np.ndarray:
    """The graph's pooling of the vectors: mean, then L2 normalisation when the model normalises."""
    vectors = table.token_vectors(ids).astype(np.float64)
    if not len(vectors):
        return np.zeros(table.dim)
    mean = vectors.mean(axis=0)
    return mean / (np.linalg.norm(mean) + 1e-32) if table.normalize else mean


@pytest.mark.parametrize("spec_id", [spec.id for spec in TINY_SPECS])
def test_fp32_vectors_are_model2vecs_encode_as_sequence(tiny_models: TinyModels, spec_id: str) -> None:
    model = StaticModel.from_pretrained(tiny_models.folder(spec_id))
    table = _table(tiny_models.bundle(spec_id), "fp32")
    for text in map(for_model2vec, TEXTS):
        cut = text[: model.max_length * model.median_token_length] if model.max_length else text
        ids = model.tokenize([cut])[0]  # truncated to max_length tokens, unk tokens left out, as model2vec does
        expected = model.encode_as_sequence(text, max_length=model.max_length)
        expected = np.asarray(expected, dtype=np.float64).reshape(-1, table.dim)
        got = table.token_vectors(ids)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", PARITY_VARIANTS)
@pytest.mark.parametrize("spec_id", [spec.id for spec in TINY_SPECS])
def test_pooled_vectors_are_the_graphs(tiny_models: TinyModels, spec_id: str, variant: str) -> None:
    """Unknown ids are left out by the reader itself: the ids come straight from the tokenizer."""
    bundle = tiny_models.bundle_with(spec_id, variant)
    table, tokenizer = _table(bundle, variant), Tokenizer.from_file(str(bundle / "tokenizer.json"))
    manifest = read_manifest(bundle)
    texts = [text for text in TEXTS if len(text) <= (manifest.char_limit or len(text))  # not truncated
             and len(tokenizer.encode(text, add_special_tokens=False).ids) <= (manifest.max_length or 10**9)]
    assert len(texts) >= 12
    graph = EdgeEmbedder(bundle, variant=variant, profile="generic").encode(texts)
    pooled = np.stack([_pooled(table, tokenizer.encode(text, add_special_tokens=False).ids) for text in texts])
    figures = measure(graph, pooled)
    assert figures.zero_mismatches == () and figures.max_rel <= 1e-6, figures


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_potion_pooled_vectors_are_the_graphs(potion_bundle: Path, debian_texts: list[str], variant: str) -> None:
    table, tokenizer = _table(potion_bundle, variant), Tokenizer.from_file(str(potion_bundle / "tokenizer.json"))
    texts = debian_texts[:200]  # synopses: shorter than the truncation
    graph = EdgeEmbedder(potion_bundle, variant=variant, profile="generic").encode(texts)
    pooled = np.stack([_pooled(table, tokenizer.encode(text, add_special_tokens=False).ids) for text in texts])
    figures = measure(graph, pooled)
    assert figures.zero_mismatches == () and figures.max_rel <= 1e-6, figures


def test_ids_outside_the_vocabulary(tiny_models: TinyModels) -> None:
    table = _table(tiny_models.bundle(MAPPED_SPEC), "int8")
    assert table.token_vectors([]).shape == (0, table.dim)
    for ids in ([0, table.vocab_size], [-1], [[1, 2]], ["a"]):
        with pytest.raises(ValueError):
            table.token_vectors(ids)


# ----------------------------------------------------------------------------- refused before anything is mapped


@pytest.fixture
def mapped(tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    return Path(shutil.copytree(tiny_models.bundle(MAPPED_SPEC), tmp_path / "bundle"))


def test_a_layout_pointing_outside_the_file_is_refused_even_when_built_in_code(mapped: Path) -> None:
    """read_manifest refuses such a layout; a Manifest made in code is checked again before the file is mapped."""
    manifest = read_manifest(mapped)
    entry = manifest.tables["int8"]
    far = ArrayEntry("float32", entry.arrays["weights"].shape, entry.size - entry.size % 4096 + 4096,
                     entry.arrays["weights"].length)
    bad = dataclasses.replace(manifest, tables={**manifest.tables, "int8": dataclasses.replace(
        entry, arrays={**entry.arrays, "weights": far})})
    with pytest.raises(BundleError, match="lays out model.int8.data wrongly.*past the end"):
        VariantTable(mapped, bad, "int8")


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte"])
def test_a_damaged_data_file_is_refused(mapped: Path, damage: str) -> None:
    path = mapped / "model.int8.data"
    data = path.read_bytes()
    path.write_bytes(data[:-8] if damage == "truncated" else data[:10] + bytes([data[10] ^ 1]) + data[11:])
    with pytest.raises(BundleError, match=str(path)):
        _table(mapped, "int8")


def test_a_mapping_pointing_past_the_table_is_refused(mapped: Path) -> None:
    manifest = read_manifest(mapped)
    mapping, rows = manifest.tables["fp32"].arrays["mapping"], manifest.tables["fp32"].arrays["table"].shape[0]
    data = bytearray((mapped / "model.fp32.data").read_bytes())
    data[mapping.offset : mapping.offset + 8] = rows.to_bytes(8, "little")
    install(mapped, "model.fp32.data", bytes(data))
    with pytest.raises(BundleError, match=f"points at row {rows} but the table has {rows} rows"):
        _table(mapped, "fp32")


def test_format_2_bundles_ask_for_a_re_export(mapped: Path) -> None:
    manifest = read_manifest(mapped)
    old = dataclasses.replace(manifest, format_version=2, tables={
        name: dataclasses.replace(entry, arrays={}, int4=None) for name, entry in manifest.tables.items()})
    with pytest.raises(BundleError, match="format 2.*re-export"):
        VariantTable(mapped, old, "fp32")
