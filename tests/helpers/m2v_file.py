"""Reading and rewriting tokenizer.m2v files for the hostile-file tests, from the layout in
m2v_edge/_native/m2v_format.h (written here again, independently of the exporter's writer).

`M2VFile(data)` splits a file into its sections; `rebuilt()` lays them out again (header, table, 8-aligned
sections) after sections were changed, added or removed; `patched()` changes bytes in place, keeping the layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"M2VTOKEN"
HEADER = struct.Struct("<8sIIQQ")  # magic, version, section count, file size, zero
ENTRY = struct.Struct("<IIQQ")  # kind, item size, offset, item count
UNIT = struct.Struct("<IIi")  # double-array unit: base, check, value
OP = struct.Struct("<IIII")  # op, flags, arg1, arg2
# kind, unk_id, flags, max_word_chars, prefix_string, id_limit, two zeros, unk_score
MODEL_RECORD = struct.Struct("<IiIIIIIId")
ROOT, FREE = 0xFFFFFFFE, 0xFFFFFFFF

KINDS = {name: kind for kind, name in enumerate(
    ("MODEL", "NORMALIZER", "PRETOKENIZER", "STRING_TABLE", "STRINGS", "VOCAB", "SCORES", "ADDED_TOKENS", "ADDED_RAW",
     "ADDED_NORMALIZED", "PRECOMPILED", "BYTE_IDS"), start=1)}
"""Section kinds by name (enum m2v_section)."""
(MODEL, NORMALIZER, PRETOKENIZER, STRING_TABLE, STRINGS, VOCAB, SCORES, ADDED_TOKENS, ADDED_RAW, ADDED_NORMALIZED,
 PRECOMPILED, BYTE_IDS) = KINDS.values()
ITEM_SIZES = {MODEL: 40, NORMALIZER: 16, PRETOKENIZER: 16, STRING_TABLE: 8, STRINGS: 1, VOCAB: 12, SCORES: 8,
              ADDED_TOKENS: 8, ADDED_RAW: 12, ADDED_NORMALIZED: 12, PRECOMPILED: 1, BYTE_IDS: 4}
MODEL_FIELDS = ("kind", "unk_id", "flags", "max_word_chars", "prefix_string", "id_limit")


@dataclass
class Entry:
    """One row of the section table, where it sits in the file."""

    at: int
    kind: int
    item: int
    offset: int
    count: int


class M2VFile:
    """A tokenizer file split into sections (payloads by kind, in table order)."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        magic, self.version, count, self.size, _ = HEADER.unpack_from(data)
        assert magic == MAGIC and self.size == len(data), "a genuine file is expected here"
        self.entries = [Entry(HEADER.size + i * ENTRY.size, *ENTRY.unpack_from(data, HEADER.size + i * ENTRY.size))
                        for i in range(count)]
        self.sections = {e.kind: data[e.offset : e.offset + e.item * e.count] for e in self.entries}

    def entry(self, kind: int) -> Entry:
        """The section-table row of a section kind."""
        return next(e for e in self.entries if e.kind == kind)

    # ------------------------------------------------------------------------------------------- reading

    def model(self) -> dict[str, int]:
        return dict(zip(MODEL_FIELDS, MODEL_RECORD.unpack(self.sections[MODEL])[:6], strict=True))

    def units(self, kind: int = VOCAB) -> list[tuple[int, int, int]]:
        return list(UNIT.iter_unpack(self.sections[kind]))

    def strings(self) -> list[bytes]:
        table, blob = self.sections.get(STRING_TABLE, b""), self.sections.get(STRINGS, b"")
        return [blob[start : start + length] for start, length in struct.iter_unpack("<II", table)]

    # ------------------------------------------------------------------------------------------- writing

    def patched(self, at: int, fmt: str, *values: int) -> bytes:
        """The file with `values` packed at byte `at` (same size and layout)."""
        data = bytearray(self.data)
        struct.pack_into(fmt, data, at, *values)
        return bytes(data)

    def patched_entry(self, section: int, **fields: int) -> bytes:
        """The file with fields of a section's table row changed (kind, item, offset, count)."""
        entry = self.entry(section)
        values = {name: getattr(entry, name) for name in ("kind", "item", "offset", "count")} | fields
        return self.patched(entry.at, ENTRY.format, *values.values())

    def patched_item(self, kind: int, index: int, fmt: str, *values: int, field: int = 0) -> bytes:
        """The file with bytes `field` bytes into item `index` of a section replaced."""
        entry = self.entry(kind)
        return self.patched(entry.offset + index * entry.item + field, fmt, *values)

    def patched_model(self, **fields: int) -> bytes:
        """The file with fields of the model record changed (MODEL_FIELDS)."""
        values = dict(zip(MODEL_FIELDS, MODEL_RECORD.unpack(self.sections[MODEL])[:6], strict=True)) | fields
        return self.patched(self.entry(MODEL).offset, "<IiIIII", *values.values())

    def rebuilt(self, **changes: bytes | None) -> bytes:
        """The file laid out again with sections replaced, added (`PRECOMPILED=b"..."`, by section name) or removed
        (None). Payloads must be whole items."""
        sections = dict(self.sections)
        for name, payload in changes.items():
            kind = KINDS[name]
            if payload is None:
                sections.pop(kind, None)
            else:
                sections[kind] = payload
        return layout(sections)


def layout(sections: dict[int, bytes]) -> bytes:
    """A file holding `sections` (kind -> payload), each at an 8-aligned offset after the table."""
    kinds = sorted(sections)
    offset = _aligned(HEADER.size + ENTRY.size * len(kinds))
    table, body = b"", b""
    for kind in kinds:
        payload = sections[kind]
        assert len(payload) % ITEM_SIZES[kind] == 0, f"section {kind}: not whole items"
        table += ENTRY.pack(kind, ITEM_SIZES[kind], offset, len(payload) // ITEM_SIZES[kind])
        body += payload + b"\0" * (_aligned(len(payload)) - len(payload))
        offset += _aligned(len(payload))
    head = table + b"\0" * (_aligned(HEADER.size + len(table)) - HEADER.size - len(table))
    return HEADER.pack(MAGIC, 1, len(kinds), HEADER.size + len(head) + len(body), 0) + head + body


def ops(*records: tuple[int, int, int, int]) -> bytes:
    """A NORMALIZER or PRETOKENIZER payload: (op, flags, arg1, arg2) records."""
    return b"".join(OP.pack(*record) for record in records)


def string_sections(strings: list[bytes]) -> dict[str, bytes]:
    """STRING_TABLE and STRINGS payloads for `strings`."""
    table, offset = b"", 0
    for text in strings:
        table += struct.pack("<II", offset, len(text))
        offset += len(text)
    return {"STRING_TABLE": table, "STRINGS": b"".join(strings)}


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8
