"""`Model2VecEmbeddingFunction`: the pymilvus surface over EdgeEmbedder, from a bundle, a model folder or a Hub id."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest
from model2vec import StaticModel

from m2v_edge import Model2VecEmbeddingFunction
from m2v_edge.errors import SourceModelError

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models/potion-base-8M"
TEXTS = ["a fast text editor", "library for parsing XML documents", ""]


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def assert_same_as_model2vec(vectors: list[np.ndarray]) -> None:
    reference = StaticModel.from_pretrained(MODEL).encode(TEXTS)
    assert isinstance(vectors, list) and len(vectors) == len(TEXTS)
    for got, want in zip(vectors, reference):
        assert got.dtype == np.float32 and got.shape == (256,)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_surface_matches_pymilvus() -> None:
    from pymilvus.model.dense import Model2VecEmbeddingFunction as Pymilvus

    for name in ("encode_queries", "encode_documents", "__call__"):
        ours = list(inspect.signature(getattr(Model2VecEmbeddingFunction, name)).parameters)
        theirs = list(inspect.signature(getattr(Pymilvus, name)).parameters)
        assert ours == theirs, name
    assert isinstance(inspect.getattr_static(Model2VecEmbeddingFunction, "dim"), property)
    default = inspect.signature(Pymilvus.__init__).parameters["model_source"].default
    assert inspect.signature(Model2VecEmbeddingFunction.__init__).parameters["model_source"].default == default


def test_from_a_bundle(potion_bundle: Path) -> None:
    ef = Model2VecEmbeddingFunction(model_source=str(potion_bundle), variant="fp32")
    assert ef.dim == 256
    assert_same_as_model2vec(ef.encode_documents(TEXTS))
    assert_same_as_model2vec(ef.encode_queries(TEXTS))
    assert_same_as_model2vec(ef(TEXTS))


def test_a_model_folder_is_exported_once_into_the_cache(cache_home: Path) -> None:
    ef = Model2VecEmbeddingFunction(model_source=MODEL, variant="fp32")
    assert_same_as_model2vec(ef.encode_documents(TEXTS))
    bundles = list((cache_home / "m2v-edge" / "bundles").iterdir())
    assert len(bundles) == 1
    manifest = bundles[0] / "m2v_edge.json"
    before = manifest.stat().st_mtime_ns
    Model2VecEmbeddingFunction(model_source=MODEL, variant="fp32")
    assert manifest.stat().st_mtime_ns == before, "the second use must reuse the cached export"


def test_a_hub_id_is_read_from_the_offline_cache(tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = "bf8b056651a2c21b8d2565580b8569da283cab23"
    repo = tmp_path / "hub" / "models--minishlab--potion-base-8M"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(MODEL, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    ef = Model2VecEmbeddingFunction(variant="fp32")  # the pymilvus default: minishlab/potion-base-8M
    assert_same_as_model2vec(ef.encode_documents(TEXTS))
    assert ef.embedder.manifest.source.revision == commit
    with pytest.raises(SourceModelError, match="offline|cache"):
        Model2VecEmbeddingFunction(model_source="minishlab/not-in-the-cache")


def test_unknown_keyword_is_refused_with_the_accepted_ones(potion_bundle: Path) -> None:
    with pytest.raises(TypeError, match="show_progress_bar.*accepted: variant"):
        Model2VecEmbeddingFunction(model_source=str(potion_bundle), show_progress_bar=True)
