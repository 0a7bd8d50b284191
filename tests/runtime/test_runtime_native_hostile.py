"""A damaged, truncated, swapped or hostile tokenizer.m2v is refused with a one-line BundleError naming the file and
the fix, on the native and the auto path, before onnxruntime or tokenizers read anything:

- files that disagree with their manifest entry (size, sha256), links out of the bundle, special files, a missing
  file: refused by the bundle checks before the core maps the file;
- files whose manifest entry matches (installed with a fresh sha256) but whose bytes break a rule of the format:
  refused by the core's loader (m2v_edge/_native/vocab.c), one crafted file per check
  (test_runtime_native_hostile_files.py), or by the runtime when the file was compiled for another table.

Random mutations of real files, loaded and tokenized in a subprocess, are in test_runtime_native_mutations.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.hostile import edit_manifest, install, refused
from helpers.tiny_models import TinyModels

from m2v_edge.runtime import EdgeEmbedder, native

if os.environ.get(native.SWITCH) == "0":
    pytest.skip("the native core is turned off (M2V_EDGE_NATIVE=0)", allow_module_level=True)

PATHS = ("native", "auto")
NAME = "tokenizer.m2v"
OTHER_SPEC = "uni-f32-m64w-L1"  # a Unigram bundle: its tokenizer.m2v differs in size and in table rows (202)


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the buffers the native core was handed (each `_core.Tokenizer` built)."""
    sizes: list[int] = []
    core = native._core
    assert core is not None, "the native core must be built for these tests (pip install -e .)"

    class RecordingCore:
        def __getattr__(self, name: str) -> object:
            return getattr(core, name)

        @staticmethod
        def Tokenizer(buffer):
            sizes.append(len(buffer))
            return core.Tokenizer(buffer)

    monkeypatch.setattr(native, "_core", RecordingCore())
    return sizes


def refused_before_mapping(bundle: Path, mapped: list[int], readers: list[str], *needles: str) -> None:
    for path in PATHS:
        refused(bundle, *needles, tokenizing=path, readers=readers, tokenizer_read=False)
    assert mapped == [], "the core was handed a file the bundle checks should have refused"


def test_the_genuine_file_loads_on_both_paths(bundle: Path, mapped: list[int]) -> None:
    for path in PATHS:
        embedder = EdgeEmbedder(bundle, tokenizing=path)
        assert embedder.tokenizing == "native"
        assert embedder.encode(["the quick brown fox"]).shape == (1, 16)
    assert mapped == [(bundle / NAME).stat().st_size] * 2


# -------------------------------------------------------------------------- refused by the bundle checks


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (lambda data: data[:-100], ("has {cut} bytes, the manifest says {size}", "truncated or was replaced")),
        (lambda data: data[:7], ("has 7 bytes, the manifest says {size}",)),
        (lambda data: data + b"\0" * 8, ("has {grown} bytes, the manifest says {size}",)),
        (lambda data: b"", ("has 0 bytes",)),
    ],
    ids=["truncated", "cut-in-the-header", "extended", "emptied"],
)
def test_a_file_of_another_size(bundle: Path, mapped: list[int], readers: list[str], change, needles) -> None:
    path = bundle / NAME
    size = path.stat().st_size
    path.write_bytes(change(path.read_bytes()))
    sizes = {"size": size, "cut": size - 100, "grown": size + 8}
    refused_before_mapping(bundle, mapped, readers, str(path), *(n.format(**sizes) for n in needles), "re-export")


def test_a_bit_flipped_after_a_good_load(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    EdgeEmbedder(bundle, tokenizing="native")  # verified and stamped: the stamp must not vouch for changed bytes
    mapped.clear()
    path = bundle / NAME
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x10
    path.write_bytes(bytes(data))
    refused_before_mapping(bundle, mapped, readers, str(path), "does not match its manifest", "corrupted")


def test_another_bundles_file(tiny_models: TinyModels, bundle: Path, mapped: list[int], readers: list[str]) -> None:
    size = (bundle / NAME).stat().st_size
    shutil.copy(tiny_models.bundle(OTHER_SPEC) / NAME, bundle / NAME)
    mapped.clear()  # the other bundle's export checked its own file with the core
    assert (bundle / NAME).stat().st_size != size
    refused_before_mapping(bundle, mapped, readers, str(bundle / NAME), f"the manifest says {size}")


def test_a_manifest_entry_with_another_size(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    size = (bundle / NAME).stat().st_size
    edit_manifest(bundle, lambda m: m["core_tokenizer"]["file"].update(size=size + 1))
    refused_before_mapping(bundle, mapped, readers, str(bundle / NAME), f"{size} bytes, the manifest says {size + 1}")


def test_a_manifest_entry_with_another_sha256(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    edit_manifest(bundle, lambda m: m["core_tokenizer"]["file"].update(sha256="0" * 64))
    refused_before_mapping(bundle, mapped, readers, str(bundle / NAME), "does not match its manifest", "000000000000")


def test_a_manifest_entry_naming_another_file(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    edit_manifest(bundle, lambda m: m["core_tokenizer"]["file"].update(file="../tokenizer.m2v"))
    refused_before_mapping(bundle, mapped, readers, "m2v_edge.json", "core_tokenizer names '../tokenizer.m2v'",
                           "expected 'tokenizer.m2v'", "re-export")


def test_a_symlink_out_of_the_bundle(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    outside = bundle.parent / "elsewhere.m2v"
    shutil.move(bundle / NAME, outside)
    (bundle / NAME).symlink_to(outside)
    refused_before_mapping(bundle, mapped, readers, str(bundle / NAME), "symlink", "outside the bundle folder")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_special_file(bundle: Path, mapped: list[int], readers: list[str], kind: str) -> None:
    path = bundle / NAME
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    refused_before_mapping(bundle, mapped, readers, str(path), "not a regular file")


def test_a_missing_file(bundle: Path, mapped: list[int], readers: list[str]) -> None:
    (bundle / NAME).unlink()
    refused_before_mapping(bundle, mapped, readers, str(bundle / NAME), "missing", "re-export")


# ---------------------------------------------------------- a matching manifest entry, the wrong table


def test_another_bundles_file_with_a_matching_entry(tiny_models: TinyModels, bundle: Path, readers: list[str]) -> None:
    """The file itself is sound, but compiled for another table (202 rows, this one has 220): its ids would index
    past this table or another vocabulary (before this check, encoding failed later inside onnxruntime's Gather)."""
    other = tiny_models.bundle(OTHER_SPEC)
    rows, other_rows = (json.loads((b / "m2v_edge.json").read_text())["vocab_size"] for b in (bundle, other))
    assert rows != other_rows
    path = install(bundle, NAME, (other / NAME).read_bytes())
    for tokenizing in PATHS:
        refused(bundle, str(path), f"compiled for a table of {other_rows} rows", f"has {rows}", "does not belong",
                "re-export", tokenizing=tokenizing, readers=readers, tokenizer_read=False)
