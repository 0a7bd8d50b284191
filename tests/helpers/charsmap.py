"""Build sentencepiece `precompiled_charsmap` blobs for tests: a tiny double-array trie writer.

tokenizers' `Precompiled` normalizer reads sentencepiece's charsmap: a little-endian u32 giving the trie's size in
bytes, the darts-clone double array (u32 units), then the replacement strings, each ended by a NUL byte. A unit's
bits: 0-7 the label, 8 "has a leaf", 9 "offset shifted by 8", 10-31 the offset to the children's base, XORed with
the unit's position; a leaf unit (bit 31 set) holds the replacement's byte offset. Traversal starts at unit 0,
XORs each key byte into the position and checks the label.

This writer gives every node a fresh block of 256 units (simple, not compact): enough for a few thousand keys.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping


def build_charsmap(rules: Mapping[str, str]) -> bytes:
    """A charsmap replacing each key (one or more characters) by its value."""
    normalized = bytearray()
    trie: dict = {}
    for key, value in sorted(rules.items()):
        if not key or "\x00" in key or "\x00" in value:
            raise ValueError(f"keys must be non-empty and neither may hold NUL: {key!r} -> {value!r}")
        node = trie
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = len(normalized)
        normalized += value.encode("utf-8") + b"\x00"

    units: list[int] = [0] * 256
    blocks = 1

    def place(node: dict, position: int) -> None:
        """Give `node` (whose own unit is at `position`) a block and write its children."""
        nonlocal blocks
        base = blocks * 256
        blocks += 1
        units.extend([0] * 256)
        offset = position ^ base
        if offset >= 1 << 21:
            raise ValueError("too many keys for this simple writer")
        units[position] |= offset << 10
        if None in node:
            units[position] |= 1 << 8
            units[base] = (1 << 31) | node[None]
        for label, child in sorted((k, v) for k, v in node.items() if k is not None):
            units[base ^ label] = label
            place(child, base ^ label)

    place(trie, 0)
    array = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(array)) + array + bytes(normalized)


def precompiled_spec(rules: Mapping[str, str]) -> dict:
    """A tokenizer.json `Precompiled` normalizer entry for `rules`."""
    return {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(build_charsmap(rules)).decode("ascii")}
