"""Every check of the core's loader (m2v_edge/_native/vocab.c), each met by a crafted tokenizer.m2v installed with a
matching manifest entry: a one-line BundleError naming the file, the loader's reason and the fix, on the native and
auto paths, before onnxruntime or tokenizers read anything, and no crash.

The files are the tiny WordPiece bundle's own tokenizer.m2v (id_limit 220) with one rule broken, written with
helpers.m2v_file (the layout of m2v_format.h, independent of the exporter's writer).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.charsmap import build_charsmap
from helpers.hostile import install, refused
from helpers.m2v_file import (
    ADDED_RAW,
    ADDED_TOKENS,
    FREE,
    HEADER,
    MAGIC,
    NORMALIZER,
    PRETOKENIZER,
    ROOT,
    STRING_TABLE,
    VOCAB,
    M2VFile,
    ops,
    string_sections,
)

from m2v_edge.runtime import EdgeEmbedder, native
from m2v_edge.runtime.native import NativeTokenizer

if os.environ.get(native.SWITCH) == "0":
    pytest.skip("the native core is turned off (M2V_EDGE_NATIVE=0)", allow_module_level=True)

VOCAB_C = Path(__file__).resolve().parents[2] / "m2v_edge" / "_native" / "vocab.c"
LIMIT = 220  # the tiny bundle's table rows: every id must be below
UNREACHABLE = {
    "too many strings": "needs a string table of 2**32 entries (a 32 GiB file)",
    "too many added tokens": "needs 2**31 added tokens (a 16 GiB file)",
    "precompiled charsmap too large": "needs a 4 GiB charsmap",
    "tokenizer file not 8-byte aligned in memory": "a mapped file is page-aligned (test_runtime_native_buffers.py)",
}
"""Checks no mapped file on this machine can reach (most guard 32-bit counts against files larger than 4 GiB)."""


def used(f: M2VFile, kind: int = VOCAB) -> int:
    """A trie unit other than the root that belongs to the trie."""
    return next(i for i, unit in enumerate(f.units(kind)) if i and unit[1] != FREE)


def charsmap(trie_bytes: int | None = None, strings: bytes | None = None, leaf: int | None = None) -> bytes:
    """A real charsmap ("Ａ" -> "é") with its trie size, strings or leaf pointer replaced."""
    blob = bytearray(build_charsmap({"Ａ": "é"}))
    size = struct.unpack_from("<I", blob)[0]
    if leaf is not None:
        at = next(4 + 4 * i for i in range(size // 4) if struct.unpack_from("<I", blob, 4 + 4 * i)[0] >> 31)
        struct.pack_into("<I", blob, at, 0x80000000 | leaf)
    if strings is not None:
        blob[4 + size :] = strings
    if trie_bytes is not None:
        struct.pack_into("<I", blob, 0, trie_bytes)
    return bytes(blob)


def scores(f: M2VFile, count: int) -> bytes:
    """The file as a Unigram model with `count` scores."""
    return M2VFile(f.patched_model(kind=2)).rebuilt(SCORES=struct.pack(f"<{count}d", *[-1.0] * count))


def strings_and(f: M2VFile, extra: bytes, **sections: bytes) -> bytes:
    """The file with a second string (index 1) and some sections replaced."""
    return f.rebuilt(**string_sections([*f.strings(), extra]), **sections)


Case = tuple[str, Callable[[M2VFile], bytes], str]
CASES: list[Case] = [
    # the header
    ("magic", lambda f: f.patched(0, "8s", b"M2VTOKEX"), "not an m2v-edge tokenizer file"),
    ("shorter-than-a-header", lambda f: f.data[:24], "not an m2v-edge tokenizer file"),
    ("version", lambda f: f.patched(8, "<I", 2), "tokenizer file of another format version"),
    ("size-field", lambda f: f.patched(16, "<Q", f.size - 8), "tokenizer file size differs from its header"),
    ("header-only", lambda f: HEADER.pack(MAGIC, 1, 1, HEADER.size, 0), "section table runs past the end"),
    ("section-count", lambda f: f.patched(12, "<I", 13), "section table runs past the end"),
    # the section table
    ("unknown-kind", lambda f: f.patched_entry(VOCAB, kind=13), "unknown section kind"),
    ("kind-zero", lambda f: f.patched_entry(VOCAB, kind=0), "unknown section kind"),
    ("duplicate-kind", lambda f: f.patched_entry(ADDED_RAW, kind=VOCAB), "a section kind appears twice"),
    ("item-size", lambda f: f.patched_entry(VOCAB, item=8), "section with a wrong item size"),
    ("misaligned", lambda f: f.patched_entry(VOCAB, offset=f.entry(VOCAB).offset + 4), "section offset out of place"),
    ("over-the-table", lambda f: f.patched_entry(VOCAB, offset=HEADER.size), "section offset out of place"),
    ("past-the-end", lambda f: f.patched_entry(VOCAB, offset=f.size + 8), "section offset out of place"),
    ("items-past-the-end", lambda f: f.patched_entry(VOCAB, count=2**61), "section runs past the end of the file"),
    # the model
    ("no-model", lambda f: f.rebuilt(MODEL=None), "the model section is missing"),
    ("two-models", lambda f: f.rebuilt(MODEL=f.sections[1] * 2), "the model section is missing"),
    ("model-kind", lambda f: f.patched_model(kind=3), "unknown model kind"),
    ("unk-id-at-the-limit", lambda f: f.patched_model(unk_id=LIMIT), "the unknown token's id is out of range"),
    ("unk-id-negative", lambda f: f.patched_model(unk_id=-1), "the unknown token's id is out of range"),
    ("id-limit-zero", lambda f: f.patched_model(id_limit=0), "the unknown token's id is out of range"),
    ("model-flags", lambda f: f.patched_model(flags=2), "unknown model flags"),
    ("unigram-without-scores", lambda f: f.patched_model(kind=2), "a Unigram model without scores"),
    ("fewer-scores-than-ids", lambda f: scores(f, 8), "a trie value is out of range"),
    # strings
    ("string-past-its-section", lambda f: f.patched_item(STRING_TABLE, 0, "<II", 1, 2), "a string runs past its"),
    ("prefix-string-missing", lambda f: f.patched_model(prefix_string=5), "an op names a string the file does not"),
    # normalizer ops
    ("normalizer-op", lambda f: f.patched_item(NORMALIZER, 0, "<I", 99), "unknown normalizer op"),
    ("bert-flags", lambda f: f.patched_item(NORMALIZER, 0, "<I", 16, field=4), "bad BertNormalizer flags"),
    ("too-many-ops", lambda f: f.rebuilt(NORMALIZER=ops(*[(2, 0, 0, 0)] * 65)), "too many ops"),
    ("strip-flags", lambda f: f.rebuilt(NORMALIZER=ops((8, 4, 0, 0))), "bad Strip flags"),
    ("prepend-string", lambda f: f.rebuilt(NORMALIZER=ops((9, 0, 7, 0))), "an op names a string the file does not"),
    ("replace-content", lambda f: f.rebuilt(NORMALIZER=ops((10, 0, 0, 9))), "an op names a string the file does not"),
    ("replace-empty", lambda f: strings_and(f, b"", NORMALIZER=ops((10, 0, 1, 0))), "Replace with an empty pattern"),
    ("precompiled-alone", lambda f: f.rebuilt(NORMALIZER=ops((11, 0, 0, 0))), "Precompiled without a charsmap"),
    # pre-tokenizer ops
    ("pretokenizer-op", lambda f: f.patched_item(PRETOKENIZER, 0, "<I", 99), "unknown pre-tokenizer op"),
    ("metaspace-flags", lambda f: f.rebuilt(PRETOKENIZER=ops((4, 4, 0, 0))), "bad Metaspace flags"),
    ("metaspace-two-chars", lambda f: f.rebuilt(PRETOKENIZER=ops((4, 1, 0, 0))), "an op needs exactly one character"),
    ("metaspace-cut-char", lambda f: strings_and(f, b"\xe2\x96", PRETOKENIZER=ops((4, 1, 1, 0))), "exactly one char"),
    ("metaspace-bad-utf8", lambda f: strings_and(f, b"\xc3\x28", PRETOKENIZER=ops((4, 1, 1, 0))), "exactly one char"),
    ("punctuation-behavior", lambda f: f.rebuilt(PRETOKENIZER=ops((5, 5, 0, 0))), "bad split behavior"),
    ("digits-flags", lambda f: f.rebuilt(PRETOKENIZER=ops((6, 2, 0, 0))), "bad Digits flags"),
    ("delimiter-string", lambda f: f.rebuilt(PRETOKENIZER=ops((7, 0, 9, 0))), "an op names a string the file does not"),
    ("split-behavior", lambda f: f.rebuilt(PRETOKENIZER=ops((8, 16 | 5, 0, 0))), "bad split behavior"),
    ("split-empty", lambda f: strings_and(f, b"", PRETOKENIZER=ops((8, 1, 1, 0))), "Split with an empty pattern"),
    # the vocabulary trie
    ("no-vocab", lambda f: f.rebuilt(VOCAB=None), "the vocabulary is missing"),
    ("vocab-255-units", lambda f: f.rebuilt(VOCAB=f.sections[VOCAB][: 255 * 12]), "not a positive multiple of 256"),
    ("vocab-0-units", lambda f: f.rebuilt(VOCAB=b""), "not a positive multiple of 256"),
    ("root", lambda f: f.patched_item(VOCAB, 0, "<I", 0, field=4), "a trie's first unit is not its root"),
    ("base-outside", lambda f: f.patched_item(VOCAB, used(f), "<I", 768), "a trie unit points outside the trie"),
    ("parent-outside", lambda f: f.patched_item(VOCAB, used(f), "<I", 768, field=4), "names a parent outside it"),
    ("second-root", lambda f: f.patched_item(VOCAB, used(f), "<I", ROOT, field=4), "names a parent outside it"),
    ("value-at-limit", lambda f: f.patched_item(VOCAB, used(f), "<i", LIMIT, field=8), "a trie value is out of range"),
    ("value-negative", lambda f: f.patched_item(VOCAB, used(f), "<i", -2, field=8), "a trie value is out of range"),
    # added tokens
    ("added-id", lambda f: f.patched_item(ADDED_TOKENS, 0, "<i", LIMIT), "an added token's id is out of range"),
    ("added-id-negative", lambda f: f.patched_item(ADDED_TOKENS, 0, "<i", -1), "an added token's id is out of range"),
    ("added-flags", lambda f: f.patched_item(ADDED_TOKENS, 0, "<I", 8, field=4), "unknown added-token flags"),
    ("added-trie-value", lambda f: f.patched_item(ADDED_RAW, used(f, ADDED_RAW), "<i", 4, field=8), "trie value"),
    ("added-normalized-root", lambda f: f.rebuilt(ADDED_NORMALIZED=b"\0" * 12 * 256), "first unit is not its root"),
    # byte fallback
    ("byte-ids-255", lambda f: f.rebuilt(BYTE_IDS=b"\xff" * 4 * 255), "byte-fallback ids must number 256"),
    ("byte-id-at-limit", lambda f: f.rebuilt(BYTE_IDS=struct.pack("<256i", LIMIT, *[-1] * 255)), "byte-fallback id"),
    ("byte-id-negative", lambda f: f.rebuilt(BYTE_IDS=struct.pack("<256i", *[-1] * 255, -2)), "byte-fallback id"),
    ("fallback-without-ids", lambda f: f.patched_model(flags=1), "byte fallback without byte ids"),
    # the precompiled charsmap
    ("charsmap-3-bytes", lambda f: f.rebuilt(PRECOMPILED=b"\4\0\0"), "precompiled charsmap shorter than its header"),
    ("charsmap-trie-odd", lambda f: f.rebuilt(PRECOMPILED=charsmap(trie_bytes=6)), "charsmap trie size out of range"),
    ("charsmap-trie-0", lambda f: f.rebuilt(PRECOMPILED=charsmap(trie_bytes=0)), "charsmap trie size out of range"),
    ("charsmap-trie-long", lambda f: f.rebuilt(PRECOMPILED=charsmap(trie_bytes=1 << 20)), "trie size out of range"),
    ("charsmap-not-utf8", lambda f: f.rebuilt(PRECOMPILED=charsmap(strings=b"\xff\0")), "strings are not UTF-8"),
    ("charsmap-cut-utf8", lambda f: f.rebuilt(PRECOMPILED=charsmap(strings=b"a\0\xc3")), "strings are not UTF-8"),
    ("charsmap-surrogate", lambda f: f.rebuilt(PRECOMPILED=charsmap(strings=b"\xed\xa0\x80\0")), "not UTF-8"),
    ("charsmap-leaf-past", lambda f: f.rebuilt(PRECOMPILED=charsmap(leaf=4)), "charsmap points outside its strings"),
    ("charsmap-leaf-inside", lambda f: f.rebuilt(PRECOMPILED=charsmap(leaf=1)), "charsmap points outside its strings"),
]


@pytest.mark.parametrize(("name", "craft", "reason"), CASES, ids=[case[0] for case in CASES])
def test_a_file_breaking_one_rule(bundle: Path, readers: list[str], name: str, craft, reason: str) -> None:
    genuine = M2VFile((bundle / "tokenizer.m2v").read_bytes())
    assert genuine.model()["id_limit"] == LIMIT
    path = install(bundle, "tokenizer.m2v", craft(genuine))
    for tokenizing in ("native", "auto"):
        refused(bundle, str(path), "is damaged", reason, "re-export the bundle or copy it again",
                tokenizing=tokenizing, readers=readers, tokenizer_read=False)


LEGAL: list[tuple[str, Callable[[M2VFile], bytes]]] = [
    ("laid-out-again", lambda f: f.rebuilt()),
    ("with-a-charsmap", lambda f: f.rebuilt(PRECOMPILED=charsmap(), NORMALIZER=ops((11, 0, 0, 0)))),
    ("with-byte-ids", lambda f: f.rebuilt(BYTE_IDS=struct.pack("<256i", LIMIT - 1, *[-1] * 255))),
    ("with-metaspace", lambda f: strings_and(f, "▁".encode(), PRETOKENIZER=ops((4, 3, 1, 0)))),
    ("64-ops", lambda f: f.rebuilt(NORMALIZER=ops(*[(2, 0, 0, 0)] * 64))),
    ("as-unigram", lambda f: scores(f, LIMIT)),
    ("value-below-limit", lambda f: f.patched_item(VOCAB, used(f), "<i", LIMIT - 1, field=8)),
]
"""Files next to the crafted ones that break no rule: the loader accepts them (so each case above fails for its own
reason, and the crafting itself is sound)."""


@pytest.mark.parametrize(("name", "craft"), LEGAL, ids=[case[0] for case in LEGAL])
def test_a_legal_neighbour_loads(bundle: Path, name: str, craft) -> None:
    install(bundle, "tokenizer.m2v", craft(M2VFile((bundle / "tokenizer.m2v").read_bytes())))
    embedder = EdgeEmbedder(bundle, tokenizing="native")
    assert embedder.encode(["the quick brown fox", "Ａ café ▁"]).shape == (2, 16)


@pytest.mark.parametrize(("unit", "was"), [(1, "x\ufffdéy"), (3, "x\ufffdy"), (100, "xy")])
def test_a_charsmap_unit_without_the_leaf_mark_replaces_nothing(bundle: Path, unit: int, was: str) -> None:
    """The loader checks the string pointer of every leaf unit (bit 31 set), the only kind darts-clone writes; the
    lookup used to read any unit below a has-leaf node as a pointer: into the middle of a character (a broken UTF-8
    sequence) or past the strings (the character deleted)."""
    genuine = M2VFile((bundle / "tokenizer.m2v").read_bytes())
    blob = bytearray(build_charsmap({"Ａ": "éé"}))
    path = install(bundle, "tokenizer.m2v", genuine.rebuilt(PRECOMPILED=bytes(blob), NORMALIZER=ops((11, 0, 0, 0))))
    assert NativeTokenizer(path, None).normalize("xＡy") == "xééy"
    size = struct.unpack_from("<I", blob)[0]
    leaf = next(4 + 4 * i for i in range(size // 4) if struct.unpack_from("<I", blob, 4 + 4 * i)[0] >> 31)
    struct.pack_into("<I", blob, leaf, unit)
    path = install(bundle, "tokenizer.m2v", genuine.rebuilt(PRECOMPILED=bytes(blob), NORMALIZER=ops((11, 0, 0, 0))))
    assert NativeTokenizer(path, None).normalize("xＡy") == "xＡy", f"before the fix: {was!r}"


def test_every_check_of_the_loader_has_a_crafted_file() -> None:
    messages = set(re.findall(r'return "([^"]+)";', VOCAB_C.read_text(encoding="utf-8")))
    assert len(messages) > 40, "the loader's messages were not found"
    covered = {message for message in messages if any(case[2] in message for case in CASES)}
    assert messages - covered == set(UNREACHABLE), f"checks without a crafted file: {messages - covered}"
