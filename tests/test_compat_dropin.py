"""`m2v_edge.Model2VecEmbeddingFunction` against pymilvus-model's own class, as a drop-in.

The reference is `pymilvus.model.dense.Model2VecEmbeddingFunction` (pymilvus-model, over model2vec), built from
the pymilvus default source `minishlab/potion-base-8M` read offline from a Hugging Face cache made of the shipped
model. (pymilvus-model 0.3.4 loads an existing folder with `StaticModel.load_local`, which model2vec 0.10 no
longer has, so the Hub-id path is the one that works with these versions.) Every expected value comes from the
reference; the typical user code is the pymilvus/Milvus Lite quick start.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from m2v_edge import Model2VecEmbeddingFunction

Reference = Any  # pymilvus.model.dense.Model2VecEmbeddingFunction, imported only inside the fixtures
Ours = Model2VecEmbeddingFunction

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models/potion-base-8M"
HUB_ID = "minishlab/potion-base-8M"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DOCS = [
    "Artificial intelligence was founded as an academic discipline in 1956.",
    "Alan Turing was the first person to conduct substantial research in AI.",
    "Born in Maida Vale, London, Turing was raised in southern England.",
]
QUERIES = ["Who is Alan Turing?", "When was AI founded?"]
TEXTS = [
    "a fast text editor for programmers",
    "Émile Zola écrivait des romans naturalistes",
    "東京は日本の首都です",
    "",
    "[UNK] and [CLS] tokens",
    "word " * 2000,
]
ATOL = 1e-5  # fp32 graph vs numpy mean: float rounding only


@pytest.fixture(scope="module")
def offline_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Hugging Face cache holding minishlab/potion-base-8M (symlinks to the shipped files), used offline."""
    hub = tmp_path_factory.mktemp("hf-hub")
    repo = hub / "models--minishlab--potion-base-8M"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for file in MODEL.iterdir():
        (snapshot / file.name).symlink_to(file)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    import huggingface_hub.constants as hub_constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(hub))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(hub_constants, "HF_HUB_CACHE", str(hub))
        patch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        yield hub


@pytest.fixture(scope="module")
def reference(offline_hub: Path) -> Reference:
    from pymilvus.model.dense import Model2VecEmbeddingFunction as Reference

    return Reference()  # the pymilvus default model_source


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the README's `m2v-edge export models/potion-base-8M -o bundles/potion` writes (default variants)."""
    from m2v_edge.export import export_model

    return export_model(MODEL, tmp_path_factory.mktemp("dropin") / "potion")


@pytest.fixture(scope="module")
def ours_fp32(bundle: Path) -> Ours:
    return Model2VecEmbeddingFunction(model_source=str(bundle), variant="fp32")


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def stack(vectors: list[np.ndarray]) -> np.ndarray:
    assert isinstance(vectors, list)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.ndim == 1 for v in vectors)
    return np.stack(vectors)


def test_dim_is_the_reference_dim(reference: Reference, ours_fp32: Ours) -> None:
    assert ours_fp32.dim == reference.dim and type(ours_fp32.dim) is type(reference.dim) is int


@pytest.mark.parametrize("method", ["encode_documents", "encode_queries", "__call__"])
def test_vectors_equal_the_reference(reference: Reference, ours_fp32: Ours, method: str) -> None:
    want = stack(getattr(reference, method)(TEXTS))
    got = stack(getattr(ours_fp32, method)(TEXTS))
    np.testing.assert_allclose(got, want, atol=ATOL)


def _generator() -> Iterator[str]:
    yield from TEXTS[:3]


INPUTS = {
    "tuple": lambda: tuple(TEXTS[:3]),
    "generator": _generator,
    "numpy-unicode": lambda: np.array(TEXTS[:3]),
    "numpy-object": lambda: np.array(TEXTS[:3], dtype=object),
    "list-of-np.str_": lambda: [np.str_(t) for t in TEXTS[:3]],
    "dict-keys": lambda: dict.fromkeys(TEXTS[:3]).keys(),
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_other_sequences_like_the_reference(reference: Reference, ours_fp32: Ours, kind: str) -> None:
    want = stack(reference.encode_documents(INPUTS[kind]()))
    got = stack(ours_fp32.encode_documents(INPUTS[kind]()))
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_single_string_is_one_vector(reference: Reference, ours_fp32: Ours) -> None:
    """The reference returns the single text's vector split into `dim` numpy scalars (model2vec gives a 1-D array
    for a str); m2v-edge returns a list holding that one vector, with the same values."""
    text = "Who is Alan Turing?"
    scalars = reference.encode_queries(text)
    assert len(scalars) == reference.dim
    got = ours_fp32.encode_queries(text)
    assert len(got) == 1
    np.testing.assert_allclose(got[0], np.asarray(scalars, dtype=np.float32), atol=ATOL)


def test_empty_list(reference: Reference, ours_fp32: Ours) -> None:
    """model2vec cannot encode nothing (ValueError); m2v-edge returns an empty list, a harmless superset."""
    with pytest.raises(ValueError):
        reference.encode_documents([])
    assert ours_fp32.encode_documents([]) == []


@pytest.mark.parametrize("bad", [None, 7, b"bytes"], ids=["None", "int", "bytes"])
def test_non_strings_raise_type_error_like_the_reference(reference: Reference, ours_fp32: Ours, bad: object) -> None:
    with pytest.raises(TypeError):
        reference.encode_documents(["fine", bad])
    with pytest.raises(TypeError):
        ours_fp32.encode_documents(["fine", bad])


def _quick_start(ef: Any, db: Path) -> tuple[list[list[int]], list[list[float]]]:
    """The pymilvus / Milvus Lite quick start: a collection sized by `ef.dim`, documents inserted, queries searched."""
    from pymilvus import MilvusClient

    db.parent.mkdir(parents=True, exist_ok=True)
    client = MilvusClient(str(db))
    try:
        client.create_collection(collection_name="demo_collection", dimension=ef.dim)
        vectors = ef.encode_documents(DOCS)
        data = [{"id": i, "vector": vectors[i], "text": DOCS[i], "subject": "history"} for i in range(len(vectors))]
        assert client.insert(collection_name="demo_collection", data=data)["insert_count"] == len(DOCS)
        hits = client.search(
            collection_name="demo_collection",
            data=ef.encode_queries(QUERIES),
            limit=3,
            output_fields=["text", "subject"],
        )
        ids = [[hit["id"] for hit in row] for row in hits]
        distances = [[hit["distance"] for hit in row] for row in hits]
        assert all(hit["entity"]["subject"] == "history" for row in hits for hit in row)
        return ids, distances
    finally:
        client.close()


def test_milvus_lite_quick_start_gives_the_reference_hits(
    reference: Reference, ours_fp32: Ours, tmp_path: Path
) -> None:
    want_ids, want_distances = _quick_start(reference, tmp_path / "reference" / "milvus.db")
    got_ids, got_distances = _quick_start(ours_fp32, tmp_path / "ours" / "milvus.db")
    assert got_ids == want_ids
    np.testing.assert_allclose(got_distances, want_distances, atol=1e-5)


# --- defaults and from_pretrained's keywords, as pymilvus passes them ---------------------------------------------


@pytest.mark.parametrize("source", ["bundle", "model-folder"])
def test_default_construction_gives_the_reference_vectors(
    reference: Reference, bundle: Path, cache_home: Path, source: str
) -> None:
    """No variant given: the bundle's most exact variant (not the device profile's int8), so swapping the import
    keeps model2vec's vectors."""
    ef = Model2VecEmbeddingFunction(model_source=str(bundle) if source == "bundle" else MODEL)
    assert ef.embedder.variant == "fp32"
    np.testing.assert_allclose(stack(ef.encode_documents(TEXTS)), stack(reference.encode_documents(TEXTS)), atol=ATOL)


def assert_same_vectors(got: np.ndarray, want: np.ndarray) -> None:
    """Equal up to float32 summation: directions to 1e-6, lengths (unnormalised models) to 1e-4 relative."""
    got_norms, want_norms = np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1)
    np.testing.assert_allclose(got_norms, want_norms, rtol=1e-4, atol=1e-6)
    live = want_norms > 0
    np.testing.assert_allclose(
        got[live] / got_norms[live, None], want[live] / want_norms[live, None], atol=ATOL
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"force_download": False},
        {"force_download": True},
        {"subfolder": None},
        {"dimensionality": 128},
        {"normalize": False},
        {"max_length": 8},
        {"max_length": None},
        {"quantize_to": "float32"},
        {"token": None},
    ],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()),
)
def test_from_pretrained_keywords_are_accepted(offline_hub: Path, cache_home: Path, kwargs: dict[str, Any]) -> None:
    from pymilvus.model.dense import Model2VecEmbeddingFunction as Reference

    want = Reference(HUB_ID, **kwargs)
    ef = Model2VecEmbeddingFunction(HUB_ID, **kwargs)
    assert ef.dim == want.dim
    assert_same_vectors(stack(ef.encode_documents(TEXTS)), stack(want.encode_documents(TEXTS)))


def test_quantize_to_int8_picks_the_int8_variant(offline_hub: Path, cache_home: Path, reference: Reference) -> None:
    ef = Model2VecEmbeddingFunction(HUB_ID, quantize_to="int8")
    assert ef.embedder.variant == "int8"
    got, want = stack(ef.encode_documents(DOCS)), stack(reference.encode_documents(DOCS))
    assert float(np.min(np.sum(got * want, axis=1))) > 0.9999


def test_subfolder_of_a_hub_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_home: Path) -> None:
    """The model in a subfolder of a Hub repository (read offline from a cache): the reference's vectors."""
    import huggingface_hub.constants as hub_constants
    from pymilvus.model.dense import Model2VecEmbeddingFunction as Reference

    hub = tmp_path / "hub"
    snapshot = hub / "models--org--nested" / "snapshots" / COMMIT / "static"
    snapshot.mkdir(parents=True)
    for file in MODEL.iterdir():
        (snapshot / file.name).symlink_to(file)
    (hub / "models--org--nested" / "refs").mkdir()
    (hub / "models--org--nested" / "refs" / "main").write_text(COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    want = stack(Reference("org/nested", subfolder="static").encode_documents(TEXTS))
    got = stack(Model2VecEmbeddingFunction("org/nested", subfolder="static").encode_documents(TEXTS))
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_a_bundle_must_match_the_keywords(bundle: Path) -> None:
    """A bundle cannot be re-shaped at load: a keyword it does not match is refused with the way out."""
    Model2VecEmbeddingFunction(str(bundle), dimensionality=256, normalize=True, max_length=512)
    for kwargs in ({"dimensionality": 128}, {"normalize": False}, {"max_length": None}):
        with pytest.raises(ValueError, match=f"{next(iter(kwargs))}=.*re-export"):
            Model2VecEmbeddingFunction(str(bundle), **kwargs)


@pytest.mark.parametrize("dtype", ["int4", "bfloat16"])
def test_an_unknown_quantize_to_offers_the_variants_there_are(bundle: Path, dtype: str) -> None:
    offered = "choose from float32, float16, int8"
    with pytest.raises(ValueError, match=f"quantize_to='{dtype}' is not supported; {offered}") as error:
        Model2VecEmbeddingFunction(str(bundle), quantize_to=dtype)
    assert "float64" not in str(error.value)
    assert ("variant='int4'" in str(error.value)) == (dtype == "int4")


def test_vocabulary_quantization_is_refused_with_the_way_out(bundle: Path) -> None:
    with pytest.raises(ValueError, match="vocabulary_quantization.*save_pretrained"):
        Model2VecEmbeddingFunction(str(bundle), vocabulary_quantization=100)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_can_be_pickled_and_copied_like_the_reference(reference: Reference, ours_fp32: Ours, how: str) -> None:
    def clone(ef: Any) -> Any:
        return pickle.loads(pickle.dumps(ef)) if how == "pickle" else copy.deepcopy(ef)

    copied = clone(ours_fp32)
    assert copied.embedder is not ours_fp32.embedder and copied.embedder.variant == "fp32"
    want = stack(clone(reference).encode_documents(DOCS))
    np.testing.assert_allclose(stack(copied.encode_documents(DOCS)), want, atol=ATOL)
