"""m2v-edge vectors against model2vec 0.10's `StaticModel.encode`, with the issue's bounds.

Bounds (issue 2, "Done means"):
  fp32 variant: minimum cosine >= 0.99999 and max abs difference <= 1e-5
  fp16 variant: minimum cosine >= 0.9999
  int8 variant: minimum cosine >= 0.995 and mean cosine >= 0.9995
  int4 variant (issue 7): minimum cosine >= 0.97 and mean cosine >= 0.994 (15 levels, a float16 scale per 64 values;
    measured: tiny models 0.9765 / 0.9946 at worst, potion-base-8M see tests/export/test_export_int4.py)
  every variant: rows model2vec gives as zero are exactly zero (and no other row is), never NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tiny_models import (
    EDGE_TEXTS,
    PARITY_VARIANTS,
    TEN_MB,
    TINY_SPECS,
    Figures,
    TinyModels,
    for_model2vec,
    measure,
)
from model2vec import StaticModel

from m2v_edge.runtime import EdgeEmbedder


def assert_within_bounds(figures: Figures, variant: str, *, source_dtype: str = "float32") -> None:
    assert figures.finite, "NaN or inf in the output"
    assert figures.zero_mismatches == (), f"zero rows differ from model2vec's at {figures.zero_mismatches}"
    if variant == "fp32" and source_dtype == "float16":
        # model2vec computes a float16 table's mean in float16 and returns float16 (rounded to 11 significant
        # bits, relative error up to 2**-11 per rounding, two roundings when normalising), while m2v-edge keeps
        # float32: the reference itself is only fp16-accurate, so this pair is compared at fp16 tolerance.
        assert figures.min_cos >= 0.9999, figures
        assert figures.max_rel <= 2**-9, figures
    elif variant == "fp32":
        assert figures.min_cos >= 0.99999, figures
        # 1e-5 absolute for vectors of unit scale; relative to the row's largest value above 1: an int8 table
        # without normalisation gives raw means of integers (up to 127), where one float32 ulp is already 7.6e-6.
        assert figures.max_rel <= 1e-5, figures
    elif variant == "fp16":
        assert figures.min_cos >= 0.9999, figures
    elif variant == "int8":
        assert figures.min_cos >= 0.995, figures
        assert figures.mean_cos >= 0.9995, figures
    elif variant == "int4":
        assert figures.min_cos >= 0.97, figures
        assert figures.mean_cos >= 0.994, figures
    else:
        raise AssertionError(variant)


@pytest.mark.parametrize("variant", PARITY_VARIANTS)
@pytest.mark.parametrize("spec_id", [spec.id for spec in TINY_SPECS])
def test_tiny_model_parity(tiny_models: TinyModels, spec_id: str, variant: str) -> None:
    texts, reference = tiny_models.reference(spec_id)
    embedder = EdgeEmbedder(tiny_models.bundle_with(spec_id, variant), variant=variant)
    out = embedder.encode(texts)
    assert out.dtype == np.float32
    assert out.shape == (len(texts), tiny_models.spec(spec_id).dim)
    figures = measure(out, reference)
    assert figures.zero_rows >= 1  # the empty text at least: the zero-vector path is exercised
    assert_within_bounds(figures, variant, source_dtype=tiny_models.spec(spec_id).dtype)


@pytest.mark.parametrize("variant", PARITY_VARIANTS)
def test_potion_parity_on_debian_texts_and_edge_cases(request, potion_reference, parity_log, variant) -> None:
    texts, reference = potion_reference
    bundle = request.getfixturevalue("potion_int4_bundle" if variant == "int4" else "potion_bundle")
    out = EdgeEmbedder(bundle, variant=variant).encode(texts)
    assert out.dtype == np.float32 and out.shape == (len(texts), 256)
    figures = measure(out, reference)
    parity_log.record(f"potion-base-8M {variant}, {len(texts)} texts (16,000 Debian + edge cases)", figures)
    for part, rows in (("queries", slice(0, 8000)), ("documents", slice(8000, 16000))):
        parity_log.record(f"potion-base-8M {variant}, Debian {part} only", measure(out[rows], reference[rows]))
    for name in ("empty", "space", "whitespace", "nul"):
        row = texts.index(EDGE_TEXTS[name])
        assert not reference[row].any(), f"model2vec no longer gives zero for {name!r}"
        assert not out[row].any(), name
    assert not out[texts.index("[UNK]")].any()  # only the unk token: zero, as in model2vec
    assert_within_bounds(figures, variant)
    if variant == "fp32":
        assert figures.max_abs <= 1e-5, figures  # normalised vectors: the absolute bound, literally


def test_model2vec_rejects_lone_surrogates(tiny_models: TinyModels) -> None:
    """Why the reference for lone surrogates is computed on U+FFFD instead: model2vec itself cannot encode them
    (tokenizers refuses strings UTF-8 cannot represent). If this starts failing, model2vec learnt to, and the
    reference in `helpers.tiny_models.for_model2vec` should follow it."""
    model = StaticModel.from_pretrained(tiny_models.folder("wp-f32-L1"))
    with pytest.raises(TypeError):
        model.encode(["quick \ud800 fox"])


@pytest.mark.parametrize("spec_id", ["wp-f32-L1", "uni-f64-m32w-L1"])
def test_lone_surrogates_encode_as_replacement_character(tiny_models: TinyModels, spec_id: str) -> None:
    embedder = EdgeEmbedder(tiny_models.bundle(spec_id), variant="fp32")
    raw = ["\ud800", "quick \udfff brown", "fox \ud83d\ude00 dog", "plain text"]
    replaced = [for_model2vec(t) for t in raw]
    assert replaced[1] == "quick \ufffd brown"
    np.testing.assert_array_equal(embedder.encode(raw), embedder.encode(replaced))
    for text, clean in zip(raw, replaced):
        np.testing.assert_array_equal(embedder.encode([text]), embedder.encode([clean]))


@pytest.mark.parametrize("spec_id", ["wp-f32-w64-nolimit", "uni-f32-L2-nolimit"])
def test_fp32_on_untruncated_very_long_text(tiny_models: TinyModels, spec_id: str) -> None:
    """A model with `max_length: null` tokenises a 200,000-character text whole (40,000 tokens).

    The issue's 1e-5 bound does not hold here, for either side: summing 40,000 float32 vectors in a different
    order moves the result by ~1e-5, and model2vec's own float32 mean (unweighted tables) is ~1e-4 away from the
    exact mean; its weighted path sums float64 products and is exact. So the check is against the exact float64
    mean, computed here from the safetensors table and model2vec's token ids, plus cosine to model2vec.
    Measured: m2v-edge 1.3e-5 and 1.9e-5 from exact on x86-64, where MLAS's MatMul sums in blocks, and 7.9e-5
    and 1.0e-4 on aarch64, where it sums the 40,000 rows one after another (as model2vec's unweighted mean
    does: 1e-4); model2vec's weighted path: 1e-8. The bound is float32 sequential summation's: 2e-4.
    """
    from safetensors.numpy import load_file

    folder = tiny_models.folder(spec_id)
    text = TEN_MB[:200_000]
    model = StaticModel.from_pretrained(folder)
    ids = np.array(model.tokenize([text])[0])
    assert len(ids) >= 40_000
    tensor_file = next(folder.rglob("model.safetensors"))
    tensors = load_file(str(tensor_file))
    table = (tensors.get("embeddings") if "embeddings" in tensors else tensors["embedding.weight"]).astype(np.float64)
    rows = table[tensors["mapping"][ids]] if "mapping" in tensors else table[ids]
    if "weights" in tensors:
        rows = rows * tensors["weights"].astype(np.float64)[ids, None]
    exact = rows.mean(axis=0)
    if model.normalize:
        exact = exact / np.linalg.norm(exact)

    out = EdgeEmbedder(tiny_models.bundle(spec_id), variant="fp32").encode([text])[0].astype(np.float64)
    assert np.abs(out - exact).max() <= 2e-4
    figures = measure(out[None], np.asarray(model.encode([text]), dtype=np.float64))
    assert figures.min_cos >= 0.99999, figures
