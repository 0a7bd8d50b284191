"""Bad input to the runtime: wrong item types, missing, damaged or foreign bundles, unknown variants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import TinyModels

from m2v_edge.errors import BundleError, M2VEdgeError
from m2v_edge.runtime import EdgeEmbedder

SPEC = "wp-f32-L1"


@pytest.fixture
def bundle(tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of a tiny bundle (fp32, fp16, int8), with a fresh verification cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    return Path(shutil.copytree(tiny_models.bundle(SPEC), tmp_path / "bundle"))


@pytest.fixture(scope="module")
def embedder(tiny_models: TinyModels) -> EdgeEmbedder:
    return EdgeEmbedder(tiny_models.bundle(SPEC), variant="fp32")


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bundle_errors_are_m2v_edge_errors() -> None:
    assert issubclass(BundleError, M2VEdgeError)


@pytest.mark.parametrize(
    ("texts", "index", "kind"),
    [
        (["ok", None], 1, "NoneType"),
        ([b"bytes"], 0, "bytes"),
        (["a", "b", 3], 2, "int"),
        (["a", 3.5, "b"], 1, "float"),
        ([["nested"]], 0, "list"),
    ],
)
def test_non_string_items_raise_type_error_naming_the_index(embedder: EdgeEmbedder, texts, index, kind) -> None:
    with pytest.raises(TypeError) as info:
        embedder.encode(texts)
    assert f"[{index}]" in str(info.value)
    assert kind in str(info.value)


def test_non_string_items_through_the_pymilvus_methods(embedder: EdgeEmbedder) -> None:
    for method in (embedder.encode_documents, embedder.encode_queries, embedder):
        with pytest.raises(TypeError, match=r"\[1\]"):
            method(["fine", None])


def test_missing_bundle_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-bundle"
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(missing, variant="fp32")
    assert str(missing) in str(info.value)
    assert "export" in str(info.value)


def test_folder_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "model.fp32.onnx").write_bytes(b"not a bundle")
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(tmp_path, variant="fp32")
    assert str(tmp_path) in str(info.value)
    assert "m2v_edge.json" in str(info.value)


def test_missing_model_file(bundle: Path) -> None:
    (bundle / "model.fp32.onnx").unlink()
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32")
    assert str(bundle / "model.fp32.onnx") in str(info.value)
    assert "re-export" in str(info.value)
    EdgeEmbedder(bundle, variant="int8")  # the other variants still load


def test_missing_tokenizer(bundle: Path) -> None:
    """tokenizer.json is what the python and tokenizers paths read (the native path reads tokenizer.m2v)."""
    (bundle / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="tokenizer.json"):
        EdgeEmbedder(bundle, variant="fp32", tokenizing="python")


def test_tampered_model_file_same_size(bundle: Path) -> None:
    path = bundle / "model.fp32.onnx"
    size = path.stat().st_size
    _flip_byte(path, size // 2)
    assert path.stat().st_size == size
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32")
    message = str(info.value)
    assert str(path) in message
    assert "sha256" in message and "re-export" in message


def test_tampering_after_a_verified_load_is_still_caught(bundle: Path) -> None:
    """The verification cache's fast path must not hide a file changed after it was verified."""
    EdgeEmbedder(bundle, variant="fp32")  # verified and remembered
    EdgeEmbedder(bundle, variant="fp32")  # fast path
    path = bundle / "model.fp32.onnx"
    _flip_byte(path, path.stat().st_size // 3)
    with pytest.raises(BundleError, match="sha256"):
        EdgeEmbedder(bundle, variant="fp32")


def test_tampered_tokenizer_same_size(bundle: Path) -> None:
    path = bundle / "tokenizer.json"
    text = path.read_text(encoding="utf-8")
    assert '"fox"' in text
    path.write_text(text.replace('"fox"', '"fix"', 1), encoding="utf-8")
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32", tokenizing="tokenizers")
    assert str(path) in str(info.value)


def test_truncated_model_file(bundle: Path) -> None:
    path = bundle / "model.int8.onnx"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="int8")
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message


def test_unknown_variant(bundle: Path) -> None:
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="int4")
    message = str(info.value)
    assert str(bundle) in message and "int4" in message
    assert "--variants" in message  # the fix: re-export with the variant


def test_variant_missing_from_this_bundle(tiny_models: TinyModels, tmp_path: Path) -> None:
    from m2v_edge.export import export_model

    only_fp32 = export_model(tiny_models.folder(SPEC), tmp_path / "b", variants=["fp32"])
    with pytest.raises(BundleError, match="int8"):
        EdgeEmbedder(only_fp32, variant="int8")


def _edit_manifest(bundle: Path, change) -> None:
    path = bundle / "m2v_edge.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_newer_format_version_asks_for_an_upgrade(bundle: Path) -> None:
    _edit_manifest(bundle, lambda m: m.update(format_version=999))
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32")
    message = str(info.value)
    assert "999" in message and "upgrade" in message
    assert str(bundle / "m2v_edge.json") in message


def test_manifest_that_is_not_json(bundle: Path) -> None:
    (bundle / "m2v_edge.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32")
    assert str(bundle / "m2v_edge.json") in str(info.value)


def test_manifest_missing_a_field(bundle: Path) -> None:
    _edit_manifest(bundle, lambda m: m.pop("dim"))
    with pytest.raises(BundleError, match="re-export"):
        EdgeEmbedder(bundle, variant="fp32")


def test_manifest_naming_a_file_outside_the_bundle(bundle: Path) -> None:
    def escape(m):
        m["variants"]["fp32"]["file"] = "../model.fp32.onnx"

    shutil.copy(bundle / "model.fp32.onnx", bundle.parent / "model.fp32.onnx")
    _edit_manifest(bundle, escape)
    with pytest.raises(BundleError, match="outside the bundle"):
        EdgeEmbedder(bundle, variant="fp32")


def test_graph_file_that_onnxruntime_cannot_read(bundle: Path) -> None:
    """A model file replaced together with its manifest entry (sha256 matches): onnxruntime's own error."""
    import hashlib

    path = bundle / "model.fp32.onnx"
    path.write_bytes(b"garbage" * 100)

    def point_at_garbage(m):
        m["variants"]["fp32"].update(size=700, sha256=hashlib.sha256(b"garbage" * 100).hexdigest())

    _edit_manifest(bundle, point_at_garbage)
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(bundle, variant="fp32")
    assert str(path) in str(info.value)


def test_bad_threads_and_budget(tiny_models: TinyModels) -> None:
    with pytest.raises(ValueError):
        EdgeEmbedder(tiny_models.bundle(SPEC), variant="fp32", threads=0)
    with pytest.raises(ValueError):
        EdgeEmbedder(tiny_models.bundle(SPEC), variant="fp32", token_budget=0)


@pytest.mark.parametrize(
    "text",
    ["", "\x00" * 10, "\ud800", "\udfff\ud800", "😀" * 1000, "中文" * 5000, "مرحبا" * 2000, "a" * 10_000_000],
)
def test_odd_texts_encode_without_error(embedder: EdgeEmbedder, text: str) -> None:
    for batch in ([text], [text, "quick brown fox"]):
        out = embedder.encode(batch)
        assert out.shape == (len(batch), embedder.dim) and np.isfinite(out).all()
