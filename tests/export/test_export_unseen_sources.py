"""Export from Model2Vec sources the other export tests do not build, compared with model2vec 0.10.

Every source model is written here the way its producer writes it: model2vec's own `StaticModel(...).save_pretrained`
(layout 1 with modules.json, README.md and `embedding_dtype`/`max_length` in config.json), model2vec's
`from_pretrained(..., quantize_to=...)`, sentence-transformers' StaticEmbedding save (layouts 2 and 3:
modules.json, `config_sentence_transformers.json` with `__version__`, `embedding.weight` with `{"format": "pt"}`
metadata, a pretty-printed tokenizer, a `1_Normalize` module), hand-edited configs and tensors, and a
huggingface_hub cache with branches and tags. Expected vectors always come from model2vec, never from m2v-edge.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.tiny_models import (
    CORPUS,
    EDGE_TEXTS,
    build_tokenizer,
    for_model2vec,
    measure,
    populate_hub_cache,
    word_salads,
    write_model2vec_folder,
)
from model2vec import StaticModel
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from m2v_edge.errors import ExportError, M2VEdgeError, SourceModelError
from m2v_edge.export import export_model
from m2v_edge.runtime import EdgeEmbedder

UNTRUNCATED_CAP = 1_000
"""Texts given to models without truncation are cut to this many characters (see helpers.tiny_models.tiny_texts)."""


# --- texts and comparison ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normal_texts(debian_texts: list[str]) -> list[str]:
    """Real texts: Debian synopses and descriptions, the tiny corpus and word salads."""
    return [*debian_texts[:120], *debian_texts[8000:8120], *CORPUS, *word_salads(40, seed=11)]


@pytest.fixture(scope="module")
def edge_texts() -> list[str]:
    return [text for name, text in EDGE_TEXTS.items() if name != "ten_mb"] + [
        "[UNK] [CLS]",
        "<unk> <pad>",
        "Hello WORLD",
    ]


def _model2vec_vectors(folder: Path, texts: list[str], dimensionality: int | None = None) -> np.ndarray:
    model = StaticModel.from_pretrained(folder, dimensionality=dimensionality)
    return np.asarray(model.encode([for_model2vec(t) for t in texts]), dtype=np.float64)


def check_parity(
    folder: Path,
    out: Path,
    normal: list[str],
    edge: list[str],
    *,
    variants: tuple[str, ...] = ("fp32", "int8"),
    dimensionality: int | None = None,
    float16_table: bool = False,
) -> Path:
    """Export `folder`, encode with every variant and compare with model2vec's vectors of the same texts."""
    config = _config_of(folder)
    texts = [*normal, *edge]
    if "max_length" in config and config["max_length"] is None:
        texts = [text[:UNTRUNCATED_CAP] for text in texts]
    bundle = export_model(folder, out, variants=variants, dimensionality=dimensionality)
    reference = _model2vec_vectors(folder, texts, dimensionality)
    for variant in variants:
        got = EdgeEmbedder(bundle, variant=variant, profile="generic").encode(texts)
        assert got.dtype == np.float32 and got.shape == reference.shape
        everything = measure(got, reference)
        assert everything.finite and everything.zero_mismatches == (), (variant, everything)
        if variant == "fp32":
            if float16_table:  # model2vec pools a float16 table in float16: its own vectors are rounded to it
                assert everything.min_cos >= 0.9999 and everything.max_rel <= 2**-9, everything
            else:  # relative to the row's magnitude: raw int8 tables give un-normalised values up to 127, where
                # float32 rounding alone is ~1e-5 (model2vec's own float32 mean is further from the exact one)
                assert everything.min_cos >= 0.999999 and everything.max_rel <= 5e-6, everything
        elif variant == "int8":
            # Per-row int8 of a random 16-dim table: a one-token text keeps ~0.9999 of its direction (potion-base-8M:
            # 0.99994 at worst on the Debian texts); 0.9998 leaves room for the worst single row of a tiny table.
            on_normal = measure(got[: len(normal)], reference[: len(normal)])
            assert on_normal.min_cos >= 0.9998 and on_normal.mean_cos >= 0.99995, on_normal
            assert everything.min_cos >= 0.999, everything
    return bundle


def _config_of(folder: Path) -> dict[str, Any]:
    for name in ("config.json", "config_sentence_transformers.json"):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text(encoding="utf-8"))
    return {}


def _table(tokenizer: Tokenizer, *, dim: int = 16, dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = tokenizer.get_vocab_size(with_added_tokens=True)
    if dtype == np.int8:
        return rng.integers(-127, 128, size=(rows, dim), dtype=np.int8)
    return (rng.standard_normal((rows, dim)) * 0.5).astype(dtype)


# --- sources written by model2vec itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "normalize", "max_length"),
    [
        ("wordpiece", True, 512),
        ("wordpiece", False, None),
        ("bpe_unk", True, None),
        ("bpe_unk", False, 8),
        ("bpe_nounk", True, 8),
        ("bpe_nounk", False, 512),
        ("unigram", True, 512),
        ("unigram", False, None),
    ],
)
def test_model2vec_save_pretrained(tmp_path, normal_texts, edge_texts, kind, normalize, max_length) -> None:
    """`StaticModel(vectors, tokenizer, ...).save_pretrained`: config with `max_length` (also null) and
    `embedding_dtype`, modules.json, a generated README.md model card."""
    tokenizer = build_tokenizer(kind)
    folder = tmp_path / "src"
    StaticModel(_table(tokenizer, seed=3), tokenizer, normalize=normalize, max_length=max_length).save_pretrained(
        folder
    )
    assert (folder / "modules.json").is_file() and (folder / "README.md").is_file()
    assert json.loads((folder / "config.json").read_text())["max_length"] == max_length
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts)


@pytest.mark.parametrize(
    ("quantize_to", "normalize"), [("int8", True), ("int8", False), ("float16", True), ("float64", False)]
)
def test_model2vec_quantize_to_then_save(tmp_path, normal_texts, edge_texts, quantize_to, normalize) -> None:
    """`from_pretrained(..., quantize_to=...)` then `save_pretrained`: int8 (raw integers averaged), float16,
    float64."""
    tokenizer = build_tokenizer("wordpiece")
    StaticModel(_table(tokenizer, seed=4), tokenizer, normalize=normalize).save_pretrained(tmp_path / "base")
    folder = tmp_path / "src"
    StaticModel.from_pretrained(tmp_path / "base", quantize_to=quantize_to).save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["embedding_dtype"] == quantize_to
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts, float16_table=quantize_to == "float16")


# --- sources written by sentence-transformers ------------------------------------------------------------------

ST_CONFIG = {
    "__version__": {"sentence_transformers": "3.3.1", "transformers": "4.46.2", "pytorch": "2.5.1"},
    "prompts": {},
    "default_prompt_name": None,
    "similarity_fn_name": "cosine",
}


def write_sentence_transformers_folder(folder: Path, tokenizer: Tokenizer, table: np.ndarray, layout: int) -> Path:
    """A StaticEmbedding model as `SentenceTransformer.save` writes it (layout 2: module at the root, 3: in
    `0_StaticEmbedding/`), followed by a Normalize module. config_sentence_transformers.json has no `normalize`."""
    inner = folder if layout == 2 else folder / "0_StaticEmbedding"
    inner.mkdir(parents=True)
    save_file(
        {"embedding.weight": np.ascontiguousarray(table)}, str(inner / "model.safetensors"), metadata={"format": "pt"}
    )
    tokenizer.save(str(inner / "tokenizer.json"))  # pretty-printed, as StaticEmbedding.save does
    (folder / "config_sentence_transformers.json").write_text(json.dumps(ST_CONFIG, indent=2))
    modules = [
        {
            "idx": 0,
            "name": "0",
            "path": "" if layout == 2 else "0_StaticEmbedding",
            "type": "sentence_transformers.models.StaticEmbedding",
        },
        {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "1_Normalize").mkdir()
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "README.md").write_text("---\nlibrary_name: sentence-transformers\nlicense: mit\n---\n# a static model\n")
    return folder


@pytest.mark.parametrize(
    ("kind", "layout", "dtype"),
    [
        ("wordpiece", 2, np.float32),
        ("wordpiece", 3, np.float16),
        ("unigram", 3, np.float32),
        ("unigram", 2, np.float16),
    ],
)
def test_sentence_transformers_static_embedding(tmp_path, normal_texts, edge_texts, kind, layout, dtype) -> None:
    tokenizer = build_tokenizer(kind)
    folder = write_sentence_transformers_folder(
        tmp_path / "src", tokenizer, _table(tokenizer, seed=6, dtype=dtype), layout
    )
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts, float16_table=dtype == np.float16)


# --- configs, tensors and tokenizers seen on the Hub -------------------------------------------------------------

OLD_M2V_CONFIG = {  # M2V_base_output-style (model2vec 0.1-0.3): PCA/zipf keys, seq_length, no max_length
    "model_type": "model2vec",
    "architectures": ["StaticModel"],
    "tokenizer_name": "BAAI/bge-base-en-v1.5",
    "apply_pca": 16,
    "apply_zipf": True,
    "sif_coefficient": 1e-4,
    "hidden_dim": 16,
    "seq_length": 1000000,
    "normalize": False,
    "language": ["en"],
}


@pytest.mark.parametrize(
    "config",
    [
        OLD_M2V_CONFIG,
        {},
        {"normalize": None},
        {"normalize": "false"},  # a non-empty string: truthy for model2vec, so vectors are normalised
        {"max_length": True},  # model2vec reads True as 1
        {"max_length": 10**9, "normalize": True},
    ],
    ids=["old-m2v", "empty", "normalize-null", "normalize-string", "max-length-true", "max-length-huge"],
)
def test_config_variants(tmp_path, normal_texts, edge_texts, config) -> None:
    tokenizer = build_tokenizer("wordpiece")
    folder = write_model2vec_folder(
        tmp_path / "src", tokenizer.to_str(), {"embeddings": _table(tokenizer, seed=5)}, config, layout=1
    )
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts)


def _tensor_case(name: str, tokenizer: Tokenizer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    rng = np.random.default_rng(8)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    table = _table(tokenizer, seed=8)
    mapping = rng.integers(0, 40, size=vocab)
    mapping[:40] = np.arange(40)
    if name.startswith("mapping-"):
        return {"embeddings": table[:40].copy(), "mapping": mapping.astype(name.split("-")[1])}, {"normalize": True}
    if name == "weights-float16":
        return {"embeddings": table, "weights": rng.uniform(0.1, 2, vocab).astype(np.float16)}, {"normalize": True}
    if name == "unrelated-tensors":
        import ml_dtypes

        extra = {"token_counts": np.arange(vocab, dtype=np.int32), "notes": np.zeros((3, 3), dtype=ml_dtypes.bfloat16)}
        return {"embeddings": table, **extra}, {"normalize": True}
    if name == "dim-1":
        return {"embeddings": table[:, :1].copy()}, {"normalize": False}
    if name == "dim-1-normalized":
        return {"embeddings": table[:, :1].copy()}, {"normalize": True}
    if name == "int8-weights-raw":
        int8 = rng.integers(-127, 128, size=table.shape).astype(np.int8)
        return {"embeddings": int8, "weights": rng.uniform(0.1, 2, vocab).astype(np.float32)}, {}
    if name == "float64-large-values":
        return {"embeddings": table.astype(np.float64) * 1000}, {}
    raise ValueError(name)


@pytest.mark.parametrize(
    "case",
    [
        "mapping-uint16",
        "mapping-int16",
        "mapping-uint64",
        "weights-float16",
        "unrelated-tensors",
        "dim-1",
        "dim-1-normalized",
        "int8-weights-raw",
        "float64-large-values",
    ],
)
def test_tensor_variants(tmp_path, normal_texts, edge_texts, case) -> None:
    if case == "unrelated-tensors":
        pytest.importorskip("ml_dtypes")
    tokenizer = build_tokenizer("wordpiece")
    tensors, config = _tensor_case(case, tokenizer)
    folder = write_model2vec_folder(tmp_path / "src", tokenizer.to_str(), tensors, config, layout=1)
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts)


def _wordlevel() -> Tokenizer:
    words = sorted({w for line in CORPUS for w in line.lower().split()})
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["[UNK]", "[PAD]", *words])}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    return tokenizer


def _byte_level_bpe() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"]
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def _edited_wordpiece(edit) -> Tokenizer:
    spec = json.loads(build_tokenizer("wordpiece").to_str())
    edit(spec)
    return Tokenizer.from_str(json.dumps(spec))


def _at_prefix(spec: dict) -> None:
    spec["model"]["continuing_subword_prefix"] = "@@"
    spec["model"]["vocab"] = {("@@" + k[2:] if k.startswith("##") else k): v for k, v in spec["model"]["vocab"].items()}


def _cased(spec: dict) -> None:
    spec["normalizer"]["lowercase"] = False
    spec["normalizer"]["strip_accents"] = False
    vocab = spec["model"]["vocab"]
    for word in ("The", "Hello", "WORLD", "Upper", "Case"):
        vocab[word] = len(vocab)


def _left_truncation_and_batch_padding(spec: dict) -> None:
    spec["truncation"] = {"direction": "Left", "max_length": 3, "strategy": "LongestFirst", "stride": 1}
    spec["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Left",
        "pad_to_multiple_of": 8,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }


TOKENIZER_CASES = {
    "wordlevel": _wordlevel,
    "byte-level-bpe": _byte_level_bpe,
    "wordpiece-cased": lambda: _edited_wordpiece(_cased),
    "wordpiece-@@-prefix": lambda: _edited_wordpiece(_at_prefix),
    "wordpiece-max-chars-5": lambda: _edited_wordpiece(lambda s: s["model"].__setitem__("max_input_chars_per_word", 5)),
    "wordpiece-no-normalizer": lambda: _edited_wordpiece(lambda s: s.__setitem__("normalizer", None)),
    "wordpiece-left-truncation-batch-padding": lambda: _edited_wordpiece(_left_truncation_and_batch_padding),
}


@pytest.mark.parametrize("case", sorted(TOKENIZER_CASES))
def test_other_tokenizers(tmp_path, normal_texts, edge_texts, case) -> None:
    tokenizer = TOKENIZER_CASES[case]()
    folder = tmp_path / "src"
    StaticModel(_table(tokenizer, seed=12), tokenizer, normalize=True).save_pretrained(folder)
    check_parity(folder, tmp_path / "bundle", normal_texts, edge_texts)


@pytest.mark.parametrize(("case", "dim"), [("st-float16-L3", 5), ("int8-mapping-weights", 3), ("unigram-saved", 1)])
def test_dimensionality_on_unseen_sources(tmp_path, normal_texts, edge_texts, case, dim) -> None:
    if case == "st-float16-L3":
        tokenizer = build_tokenizer("unigram")
        folder = write_sentence_transformers_folder(tmp_path / "src", tokenizer, _table(tokenizer, dtype=np.float16), 3)
    elif case == "int8-mapping-weights":  # the shape of a vocabulary-quantized model (tokenlearn-static-model)
        tokenizer = build_tokenizer("unigram")
        rng = np.random.default_rng(2)
        vocab = tokenizer.get_vocab_size()
        tensors = {
            "embeddings": rng.integers(-127, 128, size=(30, 16)).astype(np.int8),
            "mapping": rng.integers(0, 30, size=vocab).astype(np.int64),
            "weights": rng.uniform(0.1, 2, size=vocab).astype(np.float32),
        }
        folder = write_model2vec_folder(tmp_path / "src", tokenizer.to_str(), tensors, {"normalize": True}, layout=1)
    else:
        tokenizer = build_tokenizer("unigram")
        folder = tmp_path / "src"
        StaticModel(_table(tokenizer, seed=1), tokenizer, normalize=True).save_pretrained(folder)
    bundle = check_parity(
        folder, tmp_path / "bundle", normal_texts, edge_texts, dimensionality=dim, float16_table=case == "st-float16-L3"
    )
    assert EdgeEmbedder(bundle, variant="fp32", profile="generic").dim == dim


# --- the Hugging Face cache: branches, tags, snapshot folders -----------------------------------------------------

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
UNCACHED_COMMIT = "c" * 40
HUB_SCRIPT = r"""
import json, sys
from m2v_edge.export import export_model
results = []
for job in json.loads(sys.argv[1]):
    try:
        out = export_model(
            job["source"], job["out"], variants=["fp32"], revision=job.get("revision"), subfolder=job.get("subfolder")
        )
        manifest = json.loads((out / "m2v_edge.json").read_text())
        results.append({"ok": True, "revision": manifest["source"]["revision"], "id": manifest["source"]["id"]})
    except Exception as exc:
        results.append({"ok": False, "type": type(exc).__name__, "message": str(exc)})
print(json.dumps(results))
"""


def _run_hub_jobs(root: Path, cache: Path, jobs: list[dict], **env_extra: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(root / "hf_home"), HF_HUB_CACHE=str(cache), HF_HUB_DISABLE_TELEMETRY="1", **env_extra)
    done = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, json.dumps(jobs)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`org/model` cached at two commits: refs/main -> B (normalize false); refs/dev and tag v1.0 -> A (normalize true,
    with a LICENSE); files are symlinks into blobs/, as huggingface_hub stores them."""
    root = tmp_path_factory.mktemp("hub_unseen")
    tokenizer = build_tokenizer("wordpiece")
    src_a, src_b = root / "src_a", root / "src_b"
    StaticModel(_table(tokenizer, seed=21), tokenizer, normalize=True).save_pretrained(src_a)
    (src_a / "LICENSE").write_text("MIT licence of the tiny model A\n")
    StaticModel(_table(tokenizer, seed=22), tokenizer, normalize=False).save_pretrained(src_b)
    cache = root / "cache"
    populate_hub_cache(cache, "org/model", src_a, COMMIT_A)
    populate_hub_cache(cache, "org/model", src_b, COMMIT_B)  # refs/main -> B
    refs = cache / "models--org--model" / "refs"
    (refs / "dev").write_text(COMMIT_A)
    (refs / "v1.0").write_text(COMMIT_A)  # huggingface_hub keeps tags and branches alike under refs/<name>
    # A repository holding its model in a subfolder (model2vec's `save_pretrained(..., subfolder=...)`), licence at
    # the root.
    nested = root / "nested"
    StaticModel(_table(tokenizer, seed=23), tokenizer, normalize=True).save_pretrained(nested, subfolder="models/small")
    (nested / "LICENSE").write_text("MIT licence of the nested repository\n")
    populate_hub_cache(cache, "org/nested", nested, COMMIT_A)
    return {"root": root, "cache": cache, "a": src_a, "b": src_b, "nested": nested}


def test_hub_branch_tag_and_main_offline(hub_cache, normal_texts) -> None:
    root = hub_cache["root"]
    jobs = [
        {"source": "org/model", "out": str(root / "main")},
        {"source": "org/model", "out": str(root / "dev"), "revision": "dev"},
        {"source": "org/model", "out": str(root / "tag"), "revision": "v1.0"},
    ]
    results = _run_hub_jobs(root, hub_cache["cache"], jobs, HF_HUB_OFFLINE="1")
    assert [r["ok"] for r in results] == [True] * 3, results
    assert [r["revision"] for r in results] == [COMMIT_B, COMMIT_A, COMMIT_A]
    for name, source in (("main", hub_cache["b"]), ("dev", hub_cache["a"]), ("tag", hub_cache["a"])):
        got = EdgeEmbedder(root / name, variant="fp32", profile="generic").encode(normal_texts)
        figures = measure(got, _model2vec_vectors(source, normal_texts))
        assert figures.max_rel <= 2e-6 and figures.zero_mismatches == (), (name, figures)
    assert (root / "dev" / "LICENSE").read_text() == "MIT licence of the tiny model A\n"
    assert not (root / "dev" / "LICENSE").is_symlink()


def test_hub_snapshot_folder_given_as_a_local_path(hub_cache, tmp_path, normal_texts, edge_texts) -> None:
    snapshot = hub_cache["cache"] / "models--org--model" / "snapshots" / COMMIT_A
    assert (snapshot / "model.safetensors").is_symlink()
    bundle = check_parity(snapshot, tmp_path / "bundle", normal_texts, edge_texts)
    assert (bundle / "LICENSE").is_file() and not (bundle / "LICENSE").is_symlink()


def test_hub_and_local_subfolder(hub_cache, normal_texts) -> None:
    """model2vec's `from_pretrained(repo, subfolder=...)`: from the offline cache and from a local checkout."""
    root = hub_cache["root"]
    jobs = [{"source": "org/nested", "out": str(root / "nested-hub"), "subfolder": "models/small"}]
    (result,) = _run_hub_jobs(root, hub_cache["cache"], jobs, HF_HUB_OFFLINE="1")
    assert result["ok"] and result["id"] == "org/nested" and result["revision"] == COMMIT_A, result
    local = export_model(hub_cache["nested"], root / "nested-local", variants=("fp32",), subfolder="models/small")
    reference = np.asarray(
        StaticModel.from_pretrained(hub_cache["nested"], subfolder="models/small").encode(normal_texts),
        dtype=np.float64,
    )
    for bundle in (root / "nested-hub", local):
        figures = measure(EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(normal_texts), reference)
        assert figures.max_rel <= 2e-6 and figures.zero_mismatches == (), (bundle, figures)
        assert (bundle / "LICENSE").read_text() == "MIT licence of the nested repository\n", bundle


def test_subfolder_model_keeps_the_repository_licence(hub_cache, tmp_path) -> None:
    bundle = export_model(hub_cache["nested"], tmp_path / "b", variants=("fp32",), subfolder="models/small")
    assert (bundle / "LICENSE").read_text() == "MIT licence of the nested repository\n"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def unreachable_hub_results(hub_cache) -> list[dict]:
    """No HF_HUB_OFFLINE, and the Hub endpoint refuses connections (a machine without network)."""
    root = hub_cache["root"]
    jobs = [
        {"source": "org/model", "out": str(root / "net-main")},
        {"source": "org/model", "out": str(root / "net-dev"), "revision": "dev"},
        {"source": "org/model", "out": str(root / "net-commit"), "revision": COMMIT_A},
        {"source": "org/model", "out": str(root / "net-uncached"), "revision": UNCACHED_COMMIT},
    ]
    return _run_hub_jobs(root, hub_cache["cache"], jobs, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")


def test_unreachable_hub_falls_back_to_the_cache_for_branches(unreachable_hub_results) -> None:
    main, dev = unreachable_hub_results[:2]
    assert main["ok"] and main["revision"] == COMMIT_B, main
    assert dev["ok"] and dev["revision"] == COMMIT_A, dev


def test_unreachable_hub_with_a_cached_commit_revision(unreachable_hub_results, hub_cache, normal_texts) -> None:
    commit = unreachable_hub_results[2]
    assert commit["ok"] and commit["revision"] == COMMIT_A, commit
    got = EdgeEmbedder(hub_cache["root"] / "net-commit", variant="fp32", profile="generic").encode(normal_texts)
    figures = measure(got, _model2vec_vectors(hub_cache["a"], normal_texts))
    assert figures.max_rel <= 2e-6 and figures.zero_mismatches == (), figures


def test_unreachable_hub_with_an_uncached_commit_revision(unreachable_hub_results, hub_cache) -> None:
    uncached = unreachable_hub_results[3]
    assert not uncached["ok"] and uncached["type"] == "SourceModelError", uncached
    assert "org/model" in uncached["message"] and UNCACHED_COMMIT in uncached["message"], uncached
    assert "cache" in uncached["message"], uncached
    assert not (hub_cache["root"] / "net-uncached").exists()


# --- bfloat16 ----------------------------------------------------------------------------------------------------


def _exact_mean(tokenizer: Tokenizer, table: np.ndarray, weights: np.ndarray | None, texts: list[str]) -> np.ndarray:
    """The exact (float64) normalised mean of float32 rows, computed here from the tokenizer, following model2vec's
    rules for a normalising model with max_length 512 (character cut, truncation, unk removed)."""
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.no_padding()  # the test tokenizers pad and truncate; model2vec turns both off
    tokenizer.no_truncation()
    vocab = tokenizer.get_vocab()
    median = int(np.median([len(token) for token in vocab]))
    unk = tokenizer.token_to_id(tokenizer.model.unk_token)
    out = np.zeros((len(texts), table.shape[1]))
    for i, text in enumerate(texts):
        ids = [t for t in tokenizer.encode(text[: 512 * median], add_special_tokens=False).ids[:512] if t != unk]
        if ids:
            rows = table[ids].astype(np.float64) * (1.0 if weights is None else weights[ids, None].astype(np.float64))
            mean = rows.mean(axis=0)
            out[i] = mean / np.linalg.norm(mean)
    return out


@pytest.mark.parametrize("tensor", ["table", "weights"])
def test_bfloat16_tensors_are_read_exactly(tmp_path, normal_texts, edge_texts, tensor) -> None:
    """model2vec 0.10 loads bfloat16 tables and weights (safetensors + ml_dtypes); m2v-edge reads them as float32,
    exactly, and pools in float32. model2vec pools a bfloat16 table in bfloat16 (about 3 significant digits), so its
    own vectors are only close to the exact mean; model2vec on the exactly converted float32 tensors is the tight
    reference, and a plain numpy mean a third one."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    tokenizer = build_tokenizer("wordpiece")
    rng = np.random.default_rng(3)
    table = _table(tokenizer).astype(ml_dtypes.bfloat16 if tensor == "table" else np.float32)
    weights_dtype = ml_dtypes.bfloat16 if tensor == "weights" else np.float32
    weights = rng.uniform(0.1, 2, tokenizer.get_vocab_size()).astype(weights_dtype)
    folder = write_model2vec_folder(
        tmp_path / "src", tokenizer.to_str(), {"embeddings": table, "weights": weights}, {"normalize": True}, layout=1
    )
    as_float32 = {"embeddings": table.astype(np.float32), "weights": weights.astype(np.float32)}  # exact conversions
    exact_folder = write_model2vec_folder(
        tmp_path / "f32", tokenizer.to_str(), as_float32, {"normalize": True}, layout=1
    )
    texts = [*normal_texts, *edge_texts]
    bundle = export_model(folder, tmp_path / "out", variants=("fp32", "int8"))
    manifest = json.loads((bundle / "m2v_edge.json").read_text())
    assert manifest["extra"]["table_dtype"] == ("bfloat16" if tensor == "table" else "float32")
    got = EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(texts)
    exact = measure(got, _model2vec_vectors(exact_folder, texts))
    assert exact.finite and exact.zero_mismatches == (), exact
    assert exact.min_cos >= 0.999999 and exact.max_rel <= 5e-6, exact
    by_numpy = measure(got[: len(normal_texts)], _exact_mean(tokenizer, *as_float32.values(), normal_texts))
    assert by_numpy.zero_mismatches == () and by_numpy.max_rel <= 5e-6, by_numpy
    own = measure(got, _model2vec_vectors(folder, texts))
    assert own.zero_mismatches == () and own.min_cos >= 0.99 and own.mean_cos >= 0.9999, own
    int8 = EdgeEmbedder(bundle, variant="int8", profile="generic").encode(normal_texts)
    assert measure(int8, _model2vec_vectors(exact_folder, normal_texts)).min_cos >= 0.9998


# --- configs and vocabularies export accepts but its own runtime refuses ---------------------------------------


BAD_MAX_LENGTHS = [0, -1, False, "8", 8.5, 8.0, [8], {"tokens": 8}]
"""Config max_length values model2vec cannot use: 0 and False keep no token, -1 fails in tokenizers, the others raise
TypeError in model2vec."""


def _bad_max_length_folder(tmp_path: Path, max_length: Any) -> Path:
    tokenizer = build_tokenizer("wordpiece")
    config = {"normalize": True, "max_length": max_length}
    return write_model2vec_folder(
        tmp_path / "src", tokenizer.to_str(), {"embeddings": _table(tokenizer)}, config, layout=1
    )


@pytest.mark.parametrize("max_length", BAD_MAX_LENGTHS, ids=repr)
def test_invalid_max_length_is_refused_at_export(tmp_path, max_length) -> None:
    folder = _bad_max_length_folder(tmp_path, max_length)
    with pytest.raises(SourceModelError) as info:
        export_model(folder, tmp_path / "out", variants=("fp32",))
    message = str(info.value)
    assert str(folder / "config.json") in message and "max_length" in message, message
    assert json.dumps(max_length) in message and "--max-length" in message, message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("max_length", BAD_MAX_LENGTHS, ids=repr)
@pytest.mark.parametrize("override", [16, None])
def test_max_length_override_wins_over_an_invalid_config_value(
    tmp_path, normal_texts, max_length, override
) -> None:
    """`export_model(..., max_length=N)` does not use the config's value, as model2vec's
    `from_pretrained(..., max_length=N)` does not."""
    folder = _bad_max_length_folder(tmp_path, max_length)
    bundle = export_model(folder, tmp_path / "out", variants=("fp32",), max_length=override)
    assert json.loads((bundle / "m2v_edge.json").read_text())["max_length"] == override
    texts = [text[:UNTRUNCATED_CAP] for text in normal_texts]
    model = StaticModel.from_pretrained(folder, max_length=override)
    reference = np.asarray(model.encode([for_model2vec(t) for t in texts]), dtype=np.float64)
    figures = measure(EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(texts), reference)
    assert figures.zero_mismatches == () and figures.max_rel <= 5e-6, figures


def test_non_numeric_max_length_is_a_source_error(tmp_path) -> None:
    folder = _bad_max_length_folder(tmp_path, [8])
    with pytest.raises(TypeError):  # model2vec cannot use it either
        StaticModel.from_pretrained(folder).encode(["the quick fox"])
    with pytest.raises(SourceModelError, match="max_length"):
        export_model(folder, tmp_path / "out")


def test_vocabulary_with_id_gaps_is_refused_at_export(tmp_path) -> None:
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "fox": 2, "dog": 9}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tensors = {"embeddings": np.ones((4, 8), dtype=np.float32)}
    folder = write_model2vec_folder(tmp_path / "src", tokenizer.to_str(), tensors, {"normalize": True}, layout=1)
    with pytest.raises(IndexError):  # model2vec cannot encode the token with id 9 either
        StaticModel.from_pretrained(folder).encode(["the dog"])
    with pytest.raises(SourceModelError, match="tokenizer.json") as info:
        export_model(folder, tmp_path / "out")
    assert str(folder / "tokenizer.json") in str(info.value) and "ids up to 9" in str(info.value), str(info.value)
    assert not (tmp_path / "out").exists()


def test_vocabulary_with_id_gaps_and_a_mapping_entry_per_id(tmp_path) -> None:
    """The same vocabulary with a mapping and weights of one entry per id (unused ids included) works in model2vec,
    and so in the bundle."""
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "fox": 2, "dog": 9}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    rng = np.random.default_rng(4)
    tensors = {
        "embeddings": rng.standard_normal((4, 8)).astype(np.float32),
        "mapping": np.array([0, 1, 2, 0, 0, 0, 0, 0, 0, 3], dtype=np.int64),
        "weights": rng.uniform(0.5, 2, 10).astype(np.float32),
    }
    folder = write_model2vec_folder(tmp_path / "src", tokenizer.to_str(), tensors, {"normalize": True}, layout=1)
    texts = ["the dog", "dog fox the", "a cat", "dog"]
    bundle = export_model(folder, tmp_path / "out", variants=("fp32",))
    got = EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(texts)
    figures = measure(got, _model2vec_vectors(folder, texts))
    assert figures.zero_mismatches == () and figures.zero_rows == 1 and figures.max_rel <= 5e-6, figures


# --- the output folder ------------------------------------------------------------------------------------------


@pytest.fixture
def small_source(tmp_path: Path) -> Path:
    tokenizer = build_tokenizer("wordpiece")
    folder = tmp_path / "src"
    StaticModel(_table(tokenizer, seed=30), tokenizer, normalize=True).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("kind", ["file", "symlink-to-a-bundle", "dangling-symlink"])
def test_overwrite_refuses_a_file_or_link_and_leaves_nothing_behind(small_source, tmp_path, kind) -> None:
    """Only bundle folders (and empty folders) are replaced: a file or a link at out_dir is refused, whatever it
    holds or points to, and nothing (no '.NAME.old') is left beside it, however often it is tried."""
    out = tmp_path / "target"
    if kind == "file":
        out.write_text("not a bundle")
    elif kind == "symlink-to-a-bundle":
        out.symlink_to(export_model(small_source, tmp_path / "real-bundle", variants=("fp32",)))
    else:
        out.symlink_to(tmp_path / "nowhere")
    before = sorted(p.name for p in tmp_path.iterdir())
    for _ in range(2):
        with pytest.raises(ExportError) as info:
            export_model(small_source, out, variants=("fp32",), overwrite=True)
        assert str(out) in str(info.value) and ("file" in str(info.value) or "link" in str(info.value)), info.value
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert out.is_symlink() or out.read_text() == "not a bundle"


@pytest.mark.parametrize(
    "target", ["unrelated-folder", "the-source-itself", "parent-of-the-source", "bundle-holding-the-source"]
)
def test_overwrite_refuses_to_delete_a_folder_that_is_not_a_bundle(small_source, tmp_path, target) -> None:
    source = small_source
    if target == "unrelated-folder":
        out = tmp_path / "documents"
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
        precious = out / "thesis.tex"
    elif target == "the-source-itself":
        out, precious = small_source, small_source / "model.safetensors"
    elif target == "parent-of-the-source":
        out, precious = tmp_path, small_source / "model.safetensors"
    else:  # an m2v-edge bundle, which someone unpacked the source model into
        out = export_model(small_source, tmp_path / "bundle", variants=("fp32",))
        source = Path(shutil.copytree(small_source, out / "model"))
        precious = source / "model.safetensors"
    with pytest.raises(ExportError) as info:
        export_model(source, out, variants=("fp32",), overwrite=True)
    assert str(out) in str(info.value), info.value
    assert "not an m2v-edge bundle" in str(info.value) or "source model" in str(info.value), info.value
    assert precious.is_file()
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith((".partial", ".old"))]


def test_an_existing_empty_folder_needs_overwrite(small_source, tmp_path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    with pytest.raises(M2VEdgeError, match="overwrite"):
        export_model(small_source, out)
    assert list(out.iterdir()) == []


KILL_SCRIPT = r"""
import os, signal, sys
import m2v_edge.export.exporter as exporter
import m2v_edge.export.tables as tables

source, out, point = sys.argv[1:4]
if point == "while-writing":  # killed while the second variant's table is being prepared
    real, calls = tables.quantize_table, []
    def quantize_then_die(table, variant):
        calls.append(variant)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(table, variant)
    tables.quantize_table = quantize_then_die
else:  # killed with every file written, just before the bundle is renamed into place
    exporter._replace = lambda staging, out: os.kill(os.getpid(), signal.SIGKILL)
exporter.export_model(source, out, variants=("fp32", "int8"), overwrite=True)
"""


def _export_killed(source: Path, out: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(source), str(out), point], check=False, capture_output=True, timeout=120
    )
    assert done.returncode == -9, done.stderr.decode()


@pytest.mark.parametrize("point", ["while-writing", "before-rename"])
def test_sigkill_leaves_nothing_at_out_dir(small_source, tmp_path, point) -> None:
    out = tmp_path / "bundle"
    _export_killed(small_source, out, point)
    assert not out.exists()


@pytest.mark.parametrize("point", ["while-writing", "before-rename"])
def test_sigkill_during_overwrite_keeps_the_old_bundle(small_source, tmp_path, point) -> None:
    out = export_model(small_source, tmp_path / "bundle", variants=("fp32",))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _export_killed(small_source, out, point)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert EdgeEmbedder(out, variant="fp32", profile="generic").encode(["the quick fox"]).shape == (1, 16)


def test_a_later_export_cleans_up_after_a_killed_one(small_source, tmp_path) -> None:
    out = tmp_path / "bundle"
    _export_killed(small_source, out, "before-rename")
    export_model(small_source, out, variants=("fp32",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "src"]


# --- Hub download patterns and messages --------------------------------------------------------------------------


def test_hub_download_asks_for_licence_files_in_any_case(monkeypatch, small_source, tmp_path) -> None:
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    seen: dict[str, list[str]] = {}

    def fake_snapshot_download(repo_id, **kwargs):
        seen["patterns"] = kwargs["allow_patterns"]
        return str(small_source)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    export_model("org/model", tmp_path / "out", variants=("fp32",))
    repo_files = ["license.txt", "License", "LICENSE.md", "licence"]
    assert sorted(filter_repo_objects(repo_files, allow_patterns=seen["patterns"])) == sorted(repo_files)


def test_private_repo_message_names_options_that_exist(monkeypatch, tmp_path) -> None:
    import huggingface_hub
    from helpers import hub_http
    from huggingface_hub import errors as hub_errors

    from m2v_edge.cli import build_parser

    def not_found(repo_id, **kwargs):
        response = hub_http.response(404, f"https://huggingface.co/api/models/{repo_id}")
        raise hub_errors.RepositoryNotFoundError("not found", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    with pytest.raises(SourceModelError) as info:
        export_model("org/private-model", tmp_path / "out")
    export = build_parser()._subparsers._group_actions[0].choices["export"]
    options = {option for action in export._actions for option in action.option_strings}
    assert set(re.findall(r"--[a-z][a-z-]*", str(info.value))) <= options, str(info.value)
    assert "org/private-model" in str(info.value) and "HF_TOKEN" in str(info.value), str(info.value)
