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
from helpers.hostile import FIX, MAPPED_SPEC, edit_manifest, install, refused
from helpers.tiny_models import TinyModels

import m2v_edge.bundle.checks
import m2v_edge.onnx_scan
from m2v_edge.bundle import FORMAT_VERSION
from m2v_edge.runtime import EdgeEmbedder

# ----------------------------------------------------------------------------- manifest and files disagree


def test_manifest_dim_that_disagrees_with_the_files(bundle: Path, readers: list[str]) -> None:
    EdgeEmbedder(bundle, variant="fp32")  # verified and stamped: the stamp must not cover another manifest
    edit_manifest(bundle, lambda m: m.update(dim=8))
    refused(bundle, str(bundle / "m2v_edge.json"), "[220, 16], expected", "[220, 8]", readers=readers,
            tokenizer_read=False)


def test_variant_file_holding_another_variant(bundle: Path, readers: list[str]) -> None:
    path = install(bundle, "model.fp32.onnx", (bundle / "model.int8.onnx").read_bytes())
    refused(bundle, str(path), "'model.int8.data'", "int8 variant's data file", "variants disagree", readers=readers)


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
    refused(bundle, "table has 220 rows", "10000 token ids", "does not fit", readers=readers, tokenizer_read=False)


def test_mapping_pointing_past_the_table(tiny_models: TinyModels, tmp_path: Path, readers: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    mapped = Path(shutil.copytree(tiny_models.bundle(MAPPED_SPEC), tmp_path / "mapped"))
    EdgeEmbedder(mapped, variant="fp32")  # the genuine bundle passes
    arrays = json.loads((mapped / "m2v_edge.json").read_text(encoding="utf-8"))["tables"]["fp32"]["arrays"]
    rows, mapping = arrays["table"]["shape"][0], arrays["mapping"]
    data = bytearray((mapped / "model.fp32.data").read_bytes())
    data[mapping["offset"] + 5 * 8 : mapping["offset"] + 6 * 8] = (rows + 3).to_bytes(8, "little")
    path = install(mapped, "model.fp32.data", bytes(data))
    refused(mapped, str(path), f"points at row {rows + 3}", f"{rows} rows", readers=readers)


# ----------------------------------------------------------------------------- data file layouts (format 3)


def _layout(change):
    """A manifest edit of the int8 variant's data file layout (`table` and `scales`)."""
    return lambda manifest: change(manifest["tables"]["int8"])


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda t: t["arrays"]["scales"].update(offset=t["size"] - (t["size"] % 4096) + 4096),
         ["tables.int8.scales ends at byte", "past the end of its"]),
        (lambda t: t["arrays"]["table"].update(shape=[1 << 40, 16], length=16 << 40),
         ["tables.int8.table ends at byte", "past the end"]),
        (lambda t: t["arrays"]["scales"].update(offset=4100), ["tables.int8.scales has offset 4100", "multiple of 4096"]),
        (lambda t: t["arrays"]["scales"].update(offset=0), ["'scales' and 'table' overlap"]),
        (lambda t: t["arrays"]["scales"].update(length=4), ["tables.int8.scales has length 4", "takes 880 bytes"]),
        (lambda t: t["arrays"]["scales"].update(dtype="float64"), ["tables.int8.scales has dtype 'float64'"]),
        (lambda t: t["arrays"]["table"].update(shape=[220, -16]), ["shape of positive whole numbers"]),
        (lambda t: t["arrays"].pop("scales"), ["tables.int8 has no 'scales'"]),
        (lambda t: t["arrays"].update(extra=t["arrays"]["scales"]), ["only arrays of"]),
        (lambda t: t.update(int4={"block_size": 64, "packing": "half-blocks"}), ["int4 packing, but int8 is not int4"]),
    ],
    ids=["offset-past-the-end", "huge-shape", "unaligned", "overlap", "length", "dtype", "negative-dim",
         "missing-scales", "unknown-array", "int4-packing"],
)
def test_layouts_no_exporter_writes_are_refused_before_any_file_is_read(
    bundle: Path, readers: list[str], change, needles: list[str]
) -> None:
    """Bundles come from USB sticks: a layout whose offsets or lengths leave the file, or that no graph could read,
    is refused with the manifest, before numpy or onnxruntime map anything."""
    edit_manifest(bundle, _layout(change))
    refused(bundle, str(bundle / "m2v_edge.json"), *needles, variant="int8", readers=readers, tokenizer_read=False)


def _grow(bundle: Path, name: str) -> int:
    """Append 4096 zero bytes to a data file, the manifest following (its sha256 and size); the old size."""
    size = (bundle / name).stat().st_size
    install(bundle, name, (bundle / name).read_bytes() + b"\0" * 4096)
    return size


def test_layout_the_graph_does_not_read_as_listed(bundle: Path, readers: list[str]) -> None:
    """The graph reads its arrays where the export put them; a manifest moving one, still inside the file, is refused
    by the graph check, which runs again although the graph was stamped (the layout is part of the stamp)."""
    EdgeEmbedder(bundle, variant="int8")
    _grow(bundle, "model.int8.data")
    edit_manifest(bundle, _layout(lambda t: t["arrays"]["scales"].update(offset=t["arrays"]["scales"]["offset"] + 4096)))
    refused(bundle, str(bundle / "model.int8.onnx"), "'scales'", "not as the manifest lays out its arrays",
            variant="int8", readers=readers)


def test_layout_listing_an_array_the_graph_does_not_read(bundle: Path, readers: list[str]) -> None:
    """A layout with weights the graph never reads: a reader of the data file would pool other vectors."""
    end = _grow(bundle, "model.fp32.data")
    weights = {"dtype": "float32", "shape": [220], "offset": end - end % 4096 + 4096, "length": 880}
    edit_manifest(bundle, lambda m: m["tables"]["fp32"]["arrays"].update(weights=weights))
    refused(bundle, str(bundle / "model.fp32.onnx"), "reads ['table'] from model.fp32.data",
            "lays out ['table', 'weights']", readers=readers)


def test_format_2_manifest_with_a_layout(bundle: Path, readers: list[str]) -> None:
    edit_manifest(bundle, lambda m: m.update(format_version=2))
    refused(bundle, str(bundle / "m2v_edge.json"), "lists arrays, which bundle format 2 has not", readers=readers,
            tokenizer_read=False)


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
