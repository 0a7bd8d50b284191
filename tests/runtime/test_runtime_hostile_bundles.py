"""Broken or hostile bundle files are refused before onnxruntime or tokenizers read them, with a message naming the
file and the fix: a manifest that disagrees with the files or holds values no exporter writes, a tokenizer.json
that is not JSON or does not fit the table, symlinks out of the bundle, special files. Also: the checks run once
per file state (a warm load parses nothing), and a refused file never gets a verification stamp.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.hostile import FIX, MAPPED_SPEC, edit_manifest, graph_of, install, install_graph, refused
from helpers.tiny_models import TinyModels
from onnx import numpy_helper

import m2v_edge.bundle.checks
import m2v_edge.onnx_scan
from m2v_edge.bundle import FORMAT_VERSION
from m2v_edge.runtime import EdgeEmbedder

# ----------------------------------------------------------------------------- manifest and files disagree


def test_manifest_dim_that_disagrees_with_the_graph(bundle: Path, readers: list[str]) -> None:
    EdgeEmbedder(bundle, variant="fp32")  # verified and stamped: the stamp must not cover another manifest
    edit_manifest(bundle, lambda m: m.update(dim=8))
    refused(bundle, str(bundle / "model.fp32.onnx"), "dim 16", "manifest says dim 8", readers=readers)


def test_variant_file_holding_another_variant(bundle: Path, readers: list[str]) -> None:
    path = install(bundle, "model.fp32.onnx", (bundle / "model.int8.onnx").read_bytes())
    refused(bundle, str(path), "'model.int8.data'", "int8 variant's table file", "variants disagree", readers=readers)


def test_variant_entry_naming_another_variants_file(bundle: Path, readers: list[str]) -> None:
    edit_manifest(bundle, lambda m: m["variants"].update(fp32=m["variants"]["int8"]))
    refused(bundle, str(bundle), "puts variant fp32 in 'model.int8.onnx'", "disagree", readers=readers)


def test_variant_unknown_to_this_version(bundle: Path, readers: list[str]) -> None:
    shutil.copy(bundle / "model.fp32.onnx", bundle / "model.int9.onnx")
    edit_manifest(bundle, lambda m: m["variants"].update(int9=dict(m["variants"]["fp32"], file="model.int9.onnx")))
    refused(bundle, "'int9'", "upgrade m2v-edge", variant="int9", readers=readers)


def test_listed_variant_whose_file_is_missing(bundle: Path, readers: list[str]) -> None:
    (bundle / "model.fp16.onnx").unlink()
    refused(bundle, str(bundle / "model.fp16.onnx"), "missing", variant="fp16", readers=readers)


def test_table_with_fewer_rows_than_token_ids(bundle: Path, readers: list[str]) -> None:
    edit_manifest(bundle, lambda m: m.update(vocab_size=10_000))
    refused(bundle, "'table' has 220 rows", "10000 token ids", "does not fit", readers=readers)


def test_mapping_pointing_past_the_table(tiny_models: TinyModels, tmp_path: Path, readers: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    mapped = Path(shutil.copytree(tiny_models.bundle(MAPPED_SPEC), tmp_path / "mapped"))
    EdgeEmbedder(mapped, variant="fp32")  # the genuine bundle passes
    model = graph_of(mapped)
    mapping = next(t for t in model.graph.initializer if t.name == "mapping")
    table = next(t for t in model.graph.initializer if t.name == "table")
    values = numpy_helper.to_array(mapping).copy()
    values[5] = table.dims[0] + 3
    mapping.CopyFrom(numpy_helper.from_array(values, name="mapping"))
    path = install_graph(mapped, model)
    refused(mapped, str(path), f"points at row {table.dims[0] + 3}", f"{table.dims[0]} rows", readers=readers)


# ----------------------------------------------------------------------------- tokenizer.json


def test_tokenizer_that_is_not_json(bundle: Path, readers: list[str]) -> None:
    path = install(bundle, "tokenizer.json", b'{"model": {"vocab": ')
    refused(bundle, str(path), "not valid JSON", FIX, readers=readers, tokenizer_read=False)


def test_tokenizer_nested_too_deep_for_the_json_parser(bundle: Path, readers: list[str]) -> None:
    path = install(bundle, "tokenizer.json", b"[" * 200_000 + b"]" * 200_000)
    refused(bundle, str(path), "not valid JSON", readers=readers, tokenizer_read=False)


@pytest.mark.parametrize(
    "content",
    ['{"model": {}}', "[1, 2, 3]", '{"model": {"vocab": {"a": -1}}}', '{"model": {"vocab": {"a": "0"}}}',
     '{"model": {"vocab": {"a": 0}}, "added_tokens": [{"id": true}]}'],
)
def test_tokenizer_without_a_usable_vocabulary(bundle: Path, readers: list[str], content: str) -> None:
    path = install(bundle, "tokenizer.json", content.encode())
    refused(bundle, str(path), "not a tokenizer file", readers=readers, tokenizer_read=False)


def test_tokenizer_whose_vocabulary_does_not_fit_the_table(bundle: Path, readers: list[str]) -> None:
    data = json.loads((bundle / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"].append({"id": 500, "content": "[EXTRA]", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True})
    path = install(bundle, "tokenizer.json", json.dumps(data).encode())
    refused(bundle, str(path), "token ids up to 500", "220 rows", "does not belong", readers=readers,
            tokenizer_read=False)


# ----------------------------------------------------------------------------- links, special files, sizes


def test_bundle_file_symlinked_outside_the_bundle(bundle: Path, readers: list[str]) -> None:
    outside = bundle.parent / "elsewhere.onnx"
    shutil.move(bundle / "model.fp32.onnx", outside)
    (bundle / "model.fp32.onnx").symlink_to(outside)
    refused(bundle, str(bundle / "model.fp32.onnx"), "symlink", "outside the bundle folder", readers=readers)


def test_tokenizer_and_manifest_symlinked_outside(bundle: Path, readers: list[str]) -> None:
    for name in ("tokenizer.json", "m2v_edge.json"):
        outside = bundle.parent / f"elsewhere-{name}"
        shutil.move(bundle / name, outside)
        (bundle / name).symlink_to(outside)
        refused(bundle, str(bundle / name), "outside the bundle folder", readers=readers, tokenizer_read=False)
        (bundle / name).unlink()
        shutil.move(outside, bundle / name)


def test_symlinks_inside_the_bundle_are_fine(bundle: Path) -> None:
    (bundle / "files").mkdir()
    shutil.move(bundle / "model.fp32.onnx", bundle / "files" / "real.onnx")
    (bundle / "model.fp32.onnx").symlink_to(Path("files") / "real.onnx")
    assert EdgeEmbedder(bundle, variant="fp32").encode(["quick fox"]).shape == (1, 16)


def test_symlink_loop(bundle: Path, readers: list[str]) -> None:
    (bundle / "model.fp32.onnx").unlink()
    (bundle / "model.fp32.onnx").symlink_to("model.fp32.onnx")
    refused(bundle, str(bundle / "model.fp32.onnx"), readers=readers)


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_special_files_are_never_opened(bundle: Path, readers: list[str], kind: str) -> None:
    path = bundle / "model.fp32.onnx"
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.mkdir()  # a FIFO would block the reader forever
    refused(bundle, str(path), "not a regular file", readers=readers)


def test_huge_manifest(bundle: Path, readers: list[str]) -> None:
    text = (bundle / "m2v_edge.json").read_text(encoding="utf-8")
    (bundle / "m2v_edge.json").write_text(text + " " * (1 << 20), encoding="utf-8")
    refused(bundle, str(bundle / "m2v_edge.json"), "far more than a manifest", readers=readers, tokenizer_read=False)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"format_version": FORMAT_VERSION + 1}, "upgrade m2v-edge"),
        ({"format_version": 0}, "which no m2v-edge writes"),
        ({"format_version": True}, "integer 'format_version'"),
        ({"dim": 0}, "dim must be >= 1"),
        ({"vocab_size": -1}, "vocab_size must be >= 1"),
        ({"max_length": "many"}, "positive integer"),
        ({"unk_id": 10**9}, "unk_id"),
        ({"variants": {}}, "variants is empty"),
        ({"tokenizer": {"file": "tokenizer.json", "sha256": "../../../../etc/passwd", "size": 1}}, "64 lowercase hex"),
        ({"tokenizer": {"file": 7, "sha256": "0" * 64, "size": 1}}, "non-empty name"),
        ({"tokenizer": {"file": "tokenizer.json", "sha256": "0" * 64, "size": -5}}, "whole number of bytes"),
    ],
)
def test_manifest_values_no_exporter_writes(bundle: Path, readers: list[str], change: dict, needle: str) -> None:
    edit_manifest(bundle, lambda m: m.update(change))
    refused(bundle, str(bundle / "m2v_edge.json"), needle, readers=readers, tokenizer_read=False)


# ----------------------------------------------------------------------------- the fast path


def test_checks_run_once_per_file_state(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {"scan": 0, "tokenizer": 0}
    scan, check_tokenizer = m2v_edge.onnx_scan.scan_model, m2v_edge.bundle.checks.check_tokenizer_file

    def counting_scan(path):
        counts["scan"] += 1
        return scan(path)

    def counting_check(path, manifest):
        counts["tokenizer"] += 1
        return check_tokenizer(path, manifest)

    monkeypatch.setattr(m2v_edge.onnx_scan, "scan_model", counting_scan)
    monkeypatch.setattr(m2v_edge.bundle.checks, "check_tokenizer_file", counting_check)
    EdgeEmbedder(bundle, variant="fp32", tokenizing="python")
    assert counts == {"scan": 1, "tokenizer": 1}
    EdgeEmbedder(bundle, variant="fp32", tokenizing="python")
    EdgeEmbedder(bundle, variant="fp32", tokenizing="python")
    assert counts == {"scan": 1, "tokenizer": 1}  # warm loads parse nothing
    EdgeEmbedder(bundle, variant="fp32", tokenizing="native")
    assert counts == {"scan": 1, "tokenizer": 1}  # the native path never parses tokenizer.json
    os.utime(bundle / "model.fp32.onnx")  # a new file state: checked again
    EdgeEmbedder(bundle, variant="fp32", tokenizing="python")
    assert counts == {"scan": 2, "tokenizer": 1}
