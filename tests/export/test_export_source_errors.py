"""Model2Vec sources export refuses: each a `SourceModelError` whose message names the offending path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyModels, write_model2vec_folder
from safetensors.numpy import load_file

from m2v_edge.errors import M2VEdgeError, SourceModelError
from m2v_edge.export import export_model

BASE = "wp-f32-L1"  # layout 1: config.json + model.safetensors (`embeddings`) + tokenizer.json


@pytest.fixture
def parts(tiny_models: TinyModels) -> tuple[str, dict[str, np.ndarray], dict]:
    """A valid source's tokenizer.json text, tensors (layout-1 names) and config, to be broken by each test."""
    folder = tiny_models.folder(BASE)
    return (
        (folder / "tokenizer.json").read_text(encoding="utf-8"),
        load_file(str(folder / "model.safetensors")),
        json.loads((folder / "config.json").read_text(encoding="utf-8")),
    )


def _export_fails(source: Path, tmp_path: Path, *needles: str) -> str:
    out = tmp_path / "out"
    with pytest.raises(SourceModelError) as info:
        export_model(source, out)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)
    assert not out.exists()
    return message


def test_source_errors_are_m2v_edge_errors() -> None:
    assert issubclass(SourceModelError, M2VEdgeError)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int16", "bool"])
def test_unknown_table_dtype(parts, tmp_path: Path, dtype: str) -> None:
    tokenizer_json, tensors, config = parts
    tensors["embeddings"] = (tensors["embeddings"] * 10).astype(dtype)
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"), dtype)


@pytest.mark.parametrize("extra_rows", [-1, 5])
def test_vocabulary_and_table_size_mismatch(parts, tmp_path: Path, extra_rows: int) -> None:
    tokenizer_json, tensors, config = parts
    table = tensors["embeddings"]
    tensors["embeddings"] = table[:extra_rows] if extra_rows < 0 else np.concatenate([table, table[:extra_rows]])
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    message = _export_fails(source, tmp_path, str(source / "model.safetensors"))
    assert str(len(tensors["embeddings"])) in message


def test_missing_table_tensor(parts, tmp_path: Path) -> None:
    tokenizer_json, tensors, config = parts
    tensors = {"something_else": tensors["embeddings"]}
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"), "embeddings")


def test_sentence_transformers_layout_with_the_layout_1_tensor_name(parts, tmp_path: Path) -> None:
    """Layouts 2 and 3 name the table `embedding.weight`; `embeddings` there is as good as missing (so in model2vec)."""
    tokenizer_json, tensors, _ = parts
    source = tmp_path / "src"
    source.mkdir()
    from safetensors.numpy import save_file

    save_file(tensors, str(source / "model.safetensors"))
    (source / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    (source / "config_sentence_transformers.json").write_text("{}", encoding="utf-8")
    _export_fails(source, tmp_path, str(source / "model.safetensors"), "embedding.weight")


def test_table_that_is_not_2d(parts, tmp_path: Path) -> None:
    tokenizer_json, tensors, config = parts
    tensors["embeddings"] = tensors["embeddings"][:, 0].copy()
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"))


def test_mapping_pointing_outside_the_table(parts, tmp_path: Path) -> None:
    tokenizer_json, tensors, config = parts
    vocab = len(tensors["embeddings"])
    tensors["embeddings"] = tensors["embeddings"][:10]
    tensors["mapping"] = np.arange(vocab, dtype=np.int64) % 11  # row 10 does not exist
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"), "mapping")


def test_mapping_of_the_wrong_length(parts, tmp_path: Path) -> None:
    tokenizer_json, tensors, config = parts
    tensors["mapping"] = np.zeros(3, dtype=np.int32)
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"), "mapping")


def test_weights_of_the_wrong_length(parts, tmp_path: Path) -> None:
    tokenizer_json, tensors, config = parts
    tensors["weights"] = np.ones(len(tensors["embeddings"]) + 1, dtype=np.float32)
    source = write_model2vec_folder(tmp_path / "src", tokenizer_json, tensors, config, layout=1)
    _export_fails(source, tmp_path, str(source / "model.safetensors"), "weights")


def test_empty_folder_is_not_a_model(tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.mkdir()
    message = _export_fails(source, tmp_path, str(source), "not a Model2Vec model")
    assert "config.json" in message and "0_StaticEmbedding" in message  # says what was looked for


def test_folder_with_unrelated_files_is_not_a_model(tiny_models: TinyModels, tmp_path: Path) -> None:
    source = shutil.copytree(tiny_models.folder(BASE), tmp_path / "src")
    (source / "config.json").unlink()  # no config: no layout is complete
    _export_fails(source, tmp_path, str(source), "not a Model2Vec model")


def test_a_file_instead_of_a_folder(tiny_models: TinyModels, tmp_path: Path) -> None:
    _export_fails(tiny_models.folder(BASE) / "model.safetensors", tmp_path, "model.safetensors")


def test_neither_folder_nor_hub_id(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "model"
    _export_fails(missing, tmp_path, str(missing))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_safetensors(tiny_models: TinyModels, tmp_path: Path, damage: str) -> None:
    source = shutil.copytree(tiny_models.folder(BASE), tmp_path / "src")
    path = source / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x07" * 64 + data[64:], "truncated": data[: len(data) // 2], "empty": b""}[damage])
    _export_fails(source, tmp_path, str(path))


def test_corrupt_tokenizer(tiny_models: TinyModels, tmp_path: Path) -> None:
    source = shutil.copytree(tiny_models.folder(BASE), tmp_path / "src")
    path = source / "tokenizer.json"
    path.write_text(path.read_text(encoding="utf-8")[:-40], encoding="utf-8")
    _export_fails(source, tmp_path, str(path))


def test_tokenizer_json_that_is_not_a_tokenizer(tiny_models: TinyModels, tmp_path: Path) -> None:
    source = shutil.copytree(tiny_models.folder(BASE), tmp_path / "src")
    path = source / "tokenizer.json"
    path.write_text('{"model": {"type": "NoSuchModel"}}', encoding="utf-8")
    _export_fails(source, tmp_path, str(path))


@pytest.mark.parametrize("content", ["{ broken", "[1, 2]"])
def test_corrupt_config(tiny_models: TinyModels, tmp_path: Path, content: str) -> None:
    source = shutil.copytree(tiny_models.folder(BASE), tmp_path / "src")
    (source / "config.json").write_text(content, encoding="utf-8")
    _export_fails(source, tmp_path, str(source / "config.json"))
