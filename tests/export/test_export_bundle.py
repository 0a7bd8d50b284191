"""`export_model` on local folders: the bundle's files, manifest, sizes, determinism and all-or-nothing writes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers.tiny_models import ALL_VARIANTS, TINY_SPECS, TinyModels, write_model2vec_folder
from model2vec import StaticModel
from safetensors.numpy import load_file

import m2v_edge
from m2v_edge.errors import ExportError, SourceModelError
from m2v_edge.export import export_model
from m2v_edge.runtime import native


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(parent: Path, name: str) -> list[str]:
    """Anything an export to `parent/name` may leave behind besides the bundle itself."""
    return sorted(p.name for p in parent.iterdir() if p.name != name and (name in p.name or "partial" in p.name))


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "m2v_edge.json").read_text(encoding="utf-8"))


# --- the real model ------------------------------------------------------------------------------------------


def test_potion_bundle_files(potion_bundle: Path) -> None:
    assert sorted(p.name for p in potion_bundle.iterdir()) == [
        "ATTRIBUTION.txt",
        "m2v_edge.json",
        "model.fp16.data",
        "model.fp16.onnx",
        "model.fp32.data",
        "model.fp32.onnx",
        "model.int8.data",
        "model.int8.onnx",
        "tokenizer.json",
        *(["tokenizer.m2v"] if native.available() else []),  # written when the native core reproduces the tokenizer
    ]


def test_potion_sizes(potion_bundle: Path, potion_source: Path) -> None:
    table = load_file(str(potion_source / "model.safetensors"))["embeddings"]
    assert table.shape == (29528, 256) and table.dtype == np.float32
    table_bytes = table.size * 4
    sizes = {v: sum((potion_bundle / f"model.{v}.{e}").stat().st_size for e in ("onnx", "data")) for v in ALL_VARIANTS}
    assert sizes["int8"] <= 0.27 * table_bytes, sizes
    assert sizes["fp16"] <= 0.51 * table_bytes, sizes
    assert table_bytes <= sizes["fp32"] <= 1.01 * table_bytes, sizes


def test_potion_manifest(potion_bundle: Path, potion_source: Path) -> None:
    manifest = _manifest(potion_bundle)
    model = StaticModel.from_pretrained(potion_source)
    assert manifest["format_version"] == 3
    assert manifest["exporter_version"] == m2v_edge.__version__
    assert manifest["source"] == {
        "id": "potion-base-8M",
        "revision": None,
        "sha256": _sha256(potion_source / "model.safetensors"),
    }
    assert manifest["dim"] == model.dim == 256
    assert manifest["normalize"] is True and model.normalize is True
    assert manifest["max_length"] == model.max_length == 512  # config has none: model2vec's default
    assert manifest["median_token_length"] == model.median_token_length
    assert manifest["unk_id"] == model.unk_token_id is not None
    assert manifest["vocab_size"] == len(model.tokens) == 29528
    assert 0 <= manifest["pad_id"] < manifest["vocab_size"]
    assert set(manifest["variants"]) == set(ALL_VARIANTS)
    assert set(manifest["tables"]) == set(ALL_VARIANTS)
    for variant, entry in manifest["variants"].items():
        path = potion_bundle / entry["file"]
        assert entry["file"] == f"model.{variant}.onnx"
        assert entry["sha256"] == _sha256(path) and entry["size"] == path.stat().st_size
        table = manifest["tables"][variant]
        path = potion_bundle / table["file"]
        assert table["file"] == f"model.{variant}.data"
        assert table["sha256"] == _sha256(path) and table["size"] == path.stat().st_size
    for entry in [manifest["tokenizer"], *manifest["licence_files"]]:
        path = potion_bundle / entry["file"]
        assert entry["sha256"] == _sha256(path) and entry["size"] == path.stat().st_size
    assert [e["file"] for e in manifest["licence_files"]] == ["ATTRIBUTION.txt"]


def test_potion_graph_interface(potion_bundle: Path) -> None:
    for variant in ALL_VARIANTS:
        model = onnx.load(str(potion_bundle / f"model.{variant}.onnx"))
        onnx.checker.check_model(model)
        assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) <= 17
        inputs = {i.name: i.type.tensor_type for i in model.graph.input}
        assert list(inputs) == ["input_ids", "attention_mask"]
        for tensor_type in inputs.values():
            assert tensor_type.elem_type == onnx.TensorProto.INT64
            assert len(tensor_type.shape.dim) == 2
        (output,) = model.graph.output
        assert output.name == "embeddings"
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert output.type.tensor_type.shape.dim[1].dim_value == 256


def test_potion_arrays_are_the_graphs_only_external_data(potion_bundle: Path) -> None:
    """Format 3: every array a graph reads (here the table, and int8's scales) lives in `model.<variant>.data` where
    the manifest's layout says, page-aligned (mappable); the graph holds nothing bigger than a few constants."""
    manifest = _manifest(potion_bundle)
    for variant in ALL_VARIANTS:
        model = onnx.load(str(potion_bundle / f"model.{variant}.onnx"), load_external_data=False)
        outside = {t.name: {e.key: e.value for e in t.external_data}
                   for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
        arrays = manifest["tables"][variant]["arrays"]
        assert set(arrays) == ({"table", "scales"} if variant == "int8" else {"table"})
        assert outside == {name: {"location": f"model.{variant}.data", "offset": str(array["offset"]),
                                  "length": str(array["length"])} for name, array in arrays.items()}
        assert all(array["offset"] % 4096 == 0 for array in arrays.values())
        inside = [t for t in model.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
        assert max(len(t.raw_data) for t in inside) <= 8
        loaded = {t.name: onnx.numpy_helper.to_array(t)
                  for t in onnx.load(str(potion_bundle / f"model.{variant}.onnx")).graph.initializer}
        assert {name: list(loaded[name].shape) for name in arrays} == {n: a["shape"] for n, a in arrays.items()}
        end = max(array["offset"] + array["length"] for array in arrays.values())
        assert end == (potion_bundle / f"model.{variant}.data").stat().st_size


def test_potion_tokenizer_and_licence(potion_bundle: Path, potion_source: Path) -> None:
    source = json.loads((potion_source / "tokenizer.json").read_text(encoding="utf-8"))
    bundled = json.loads((potion_bundle / "tokenizer.json").read_text(encoding="utf-8"))
    assert bundled["padding"] is None and bundled["truncation"] is None
    assert {k: v for k, v in bundled.items() if k not in ("padding", "truncation")} == {
        k: v for k, v in source.items() if k not in ("padding", "truncation")
    }
    assert (potion_bundle / "ATTRIBUTION.txt").read_bytes() == (potion_source / "ATTRIBUTION.txt").read_bytes()


def test_export_twice_is_byte_identical(potion_bundle: Path, potion_source: Path, tmp_path: Path) -> None:
    again = export_model(potion_source, tmp_path / "again", variants=list(ALL_VARIANTS))
    names = sorted(p.name for p in potion_bundle.iterdir())
    assert sorted(p.name for p in again.iterdir()) == names
    for name in names:
        assert (again / name).read_bytes() == (potion_bundle / name).read_bytes(), name


# --- tiny models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_id", [spec.id for spec in TINY_SPECS])
def test_tiny_manifest_matches_model2vec(tiny_models: TinyModels, spec_id: str) -> None:
    spec = tiny_models.spec(spec_id)
    manifest = _manifest(tiny_models.bundle(spec_id))
    model = StaticModel.from_pretrained(tiny_models.folder(spec_id))
    assert manifest["dim"] == model.dim == spec.dim
    assert manifest["normalize"] is bool(model.normalize)
    assert manifest["max_length"] == model.max_length
    assert manifest["median_token_length"] == model.median_token_length
    assert manifest["unk_id"] == model.unk_token_id
    assert manifest["vocab_size"] == len(model.tokens)
    for variant in ALL_VARIANTS:
        arrays = manifest["tables"][variant]["arrays"]
        assert ("weights" in arrays) is (spec.weights is not None)
        assert ("mapping" in arrays) is (spec.mapping is not None)
    assert manifest["extra"]["table_dtype"] == spec.dtype
    tensor_file = next(tiny_models.folder(spec_id).rglob("model.safetensors"))
    assert manifest["source"]["sha256"] == _sha256(tensor_file)
    bundled = json.loads((tiny_models.bundle(spec_id) / "tokenizer.json").read_text(encoding="utf-8"))
    assert bundled["padding"] is None and bundled["truncation"] is None
    licences = [e["file"] for e in manifest["licence_files"]]
    assert licences == (["LICENSE"] if spec.licence else [])


def test_tiny_source_with_padding_and_truncation_is_cleaned(tiny_models: TinyModels) -> None:
    """The WordPiece source sets padding (length 16) and truncation (5 tokens): the bundle has neither."""
    source = json.loads((tiny_models.folder("wp-f32-L1") / "tokenizer.json").read_text(encoding="utf-8"))
    assert source["padding"] is not None and source["truncation"] is not None
    bundled = json.loads((tiny_models.bundle("wp-f32-L1") / "tokenizer.json").read_text(encoding="utf-8"))
    assert bundled["padding"] is None and bundled["truncation"] is None
    assert bundled["post_processor"] == source["post_processor"]
    licence = tiny_models.folder("wp-f32-L1") / "LICENSE"
    assert (tiny_models.bundle("wp-f32-L1") / "LICENSE").read_bytes() == licence.read_bytes()


@pytest.mark.parametrize("spec_id", ["bpeunk-f32-w-L3", "uni-i8-L3", "wp-f64-m32w-L3"])
def test_tiny_export_twice_is_byte_identical(tiny_models: TinyModels, spec_id: str, tmp_path: Path) -> None:
    first = export_model(tiny_models.folder(spec_id), tmp_path / "a", variants=ALL_VARIANTS)
    second = export_model(tiny_models.folder(spec_id), tmp_path / "b", variants=ALL_VARIANTS)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_variants_argument(tiny_models: TinyModels, tmp_path: Path) -> None:
    folder = tiny_models.folder("uni-f32-m64w-L1")
    default = export_model(folder, tmp_path / "default")
    assert set(_manifest(default)["variants"]) == {"fp32", "int8"}
    assert not (default / "model.fp16.onnx").exists()
    as_text = export_model(folder, tmp_path / "text", variants="fp16,int8")
    assert set(_manifest(as_text)["variants"]) == {"fp16", "int8"}
    repeated = export_model(folder, tmp_path / "repeated", variants=["int8", "int8"])
    assert set(_manifest(repeated)["variants"]) == {"int8"}


def test_out_dir_parent_is_created(tiny_models: TinyModels, tmp_path: Path) -> None:
    out = export_model(tiny_models.folder("wp-f32-L1"), tmp_path / "deep" / "er" / "bundle", variants=["fp32"])
    assert (out / "m2v_edge.json").is_file()


# --- all-or-nothing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variants", [["fp32", "int2"], ["FP32"], [], "fp32,,bf16"])
def test_bad_variant_leaves_nothing(tiny_models: TinyModels, tmp_path: Path, variants) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(ExportError) as info:
        export_model(tiny_models.folder("wp-f32-L1"), out, variants=variants)
    assert "fp32, fp16, int8, int4" in str(info.value)
    assert not out.exists()
    assert _leftovers(tmp_path, "bundle") == []


def test_size_mismatch_leaves_nothing(tiny_models: TinyModels, tmp_path: Path) -> None:
    source = shutil.copytree(tiny_models.folder("wp-f32-L1"), tmp_path / "source")
    tensors = load_file(str(source / "model.safetensors"))
    tensors["embeddings"] = np.concatenate([tensors["embeddings"], tensors["embeddings"][:3]])
    from safetensors.numpy import save_file

    save_file(tensors, str(source / "model.safetensors"))
    out = tmp_path / "bundle"
    with pytest.raises(SourceModelError):
        export_model(source, out)
    assert not out.exists()
    assert _leftovers(tmp_path, "bundle") == []


def test_failure_while_writing_leaves_nothing(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after some files were written (here: building the second graph) removes the staging folder."""
    import m2v_edge.export.exporter as exporter

    real_build, calls = exporter.build_graph, []

    def failing_build(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash while exporting")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(exporter, "build_graph", failing_build)
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_model(tiny_models.folder("wp-f32-L1"), out, variants=["fp32", "int8"])
    assert len(calls) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_out_dir_needs_overwrite(tiny_models: TinyModels, tmp_path: Path) -> None:
    out = export_model(tiny_models.folder("wp-f32-L1"), tmp_path / "bundle", variants=["fp32", "int8"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ExportError) as info:
        export_model(tiny_models.folder("uni-i8-L3"), out, variants=["fp16"])
    assert str(out) in str(info.value) and "overwrite" in str(info.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    other = tmp_path / "not-a-bundle"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ExportError):
        export_model(tiny_models.folder("wp-f32-L1"), other)
    assert (other / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_the_whole_bundle(tiny_models: TinyModels, tmp_path: Path) -> None:
    out = export_model(tiny_models.folder("wp-f32-L1"), tmp_path / "bundle", variants=["fp32", "int8"])
    (out / "stray.txt").write_text("left by someone")
    replaced = export_model(tiny_models.folder("uni-i8-L3"), out, variants=["fp16"], overwrite=True)
    assert replaced == out
    core = ["tokenizer.m2v"] if native.available() else []
    assert sorted(p.name for p in out.iterdir()) == [
        "m2v_edge.json", "model.fp16.data", "model.fp16.onnx", "tokenizer.json", *core
    ]
    assert _manifest(out)["source"]["id"] == "uni-i8-L3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_failed_overwrite_keeps_the_old_bundle(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import m2v_edge.export.exporter as exporter

    out = export_model(tiny_models.folder("wp-f32-L1"), tmp_path / "bundle", variants=["fp32"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(exporter, "build_graph", crash)
    with pytest.raises(RuntimeError):
        export_model(tiny_models.folder("uni-i8-L3"), out, variants=["fp32"], overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    with pytest.raises(SourceModelError):
        export_model(tmp_path / "missing-source", out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_write_helper_round_trip(tmp_path: Path, tiny_models: TinyModels) -> None:
    """The helper that writes broken sources in test_export_source_errors writes valid ones too."""
    folder = tiny_models.folder("bpeunk-f64-L2")
    tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
    tensors = {"embeddings": load_file(str(folder / "model.safetensors"))["embedding.weight"]}
    copy = write_model2vec_folder(tmp_path / "copy", tokenizer_json, tensors, {"normalize": True}, layout=1)
    bundle = export_model(copy, tmp_path / "bundle", variants=["fp32"])
    assert _manifest(bundle)["source"]["id"] == "copy"
