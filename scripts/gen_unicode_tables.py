"""Generate m2v_edge/_native/unicode_data.h: the per-character facts the native tokenizing core needs.

    .venv/bin/python scripts/gen_unicode_tables.py        # rewrites the header; commit it

Exactness to tokenizers is the point, and tokenizers' Unicode data comes from several Rust crates of different ages
(unicode_categories, unicode-normalization-alignments, Rust's own char methods, unicode-segmentation). So the facts
are not taken from a Unicode version but read off the installed tokenizers itself, one code point at a time, by
running its normalizers and pre-tokenizers on that character:

- BertNormalizer's clean_text (delete / turn into a space), handle_chinese_chars, strip_accents (which marks it
  deletes after NFD), Lowercase (the full lowercase mapping), StripAccents (combining marks), NFD and NFKD (full
  decompositions), WhitespaceSplit (char::is_whitespace), BertPreTokenizer (punctuation), Whitespace (regex \\w and
  \\s), Digits (char::is_numeric).
- Canonical combining classes come from Python's unicodedata, kept only where tokenizers reorders around the
  character (a character it does not know has class 0); canonical compositions likewise, kept only where
  tokenizers' NFC composes the pair.
- Grapheme cluster break properties (for the Precompiled normalizer, which works on graphemes) come from the
  `regex` module, and the characters that join a preceding letter are checked against tokenizers' own grapheme
  splitting through a Precompiled charsmap built for the purpose.

Needs tokenizers and regex (dev dependencies). Takes about a minute.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import regex
import tokenizers
from tokenizers import normalizers as N
from tokenizers import pre_tokenizers as P

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from helpers.charsmap import build_charsmap  # noqa: E402

OUT = REPO / "m2v_edge" / "_native" / "unicode_data.h"
BLOCK = 128

FLAGS = (
    "CLEAN_REMOVE", "CLEAN_SPACE", "CHINESE", "NONSPACING_MARK", "COMBINING_MARK", "WHITESPACE", "PUNCTUATION",
    "WORD", "REGEX_SPACE", "NUMERIC", "HAS_LOWER", "HAS_NFD", "HAS_NFKD", "EXTENDED_PICTOGRAPHIC",
)
GCB = ("Other", "CR", "LF", "Control", "Extend", "ZWJ", "Regional_Indicator", "Prepend", "SpacingMark", "L", "V",
       "T", "LV", "LVT")
INCB = ("None", "Linker", "Consonant", "Extend")


def code_points() -> Iterator[int]:
    """Every Unicode scalar value (surrogates cannot reach tokenizers)."""
    yield from range(0xD800)
    yield from range(0xE000, 0x110000)


class Probe:
    """tokenizers' components, each asked about one character."""

    def __init__(self) -> None:
        self.clean = N.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
        self.chinese = N.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                                        lowercase=False)
        self.strip_bert = N.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                           lowercase=False)
        self.lower = N.Lowercase()
        self.strip_accents = N.StripAccents()
        self.nfd, self.nfkd, self.nfc = N.NFD(), N.NFKD(), N.NFC()
        self.ws_split = P.WhitespaceSplit()
        self.bert_pre = P.BertPreTokenizer()
        self.whitespace = P.Whitespace()
        self.digits = P.Digits(individual_digits=True)
        self.attach = N.Precompiled(build_charsmap({"A": "X"}))

    def facts(self, cp: int) -> tuple[set[str], str | None, str | None, str | None]:
        """(flags, lowercase, nfd, nfkd) of one code point; a mapping is None where it is the identity."""
        c = chr(cp)
        flags = set()
        cleaned = self.clean.normalize_str(c)
        if cleaned == "":
            flags.add("CLEAN_REMOVE")
        elif cleaned == " ":
            flags.add("CLEAN_SPACE")
        if self.chinese.normalize_str(c) == f" {c} ":
            flags.add("CHINESE")
        nfd = self.nfd.normalize_str(c)
        if nfd == c and self.strip_bert.normalize_str(c) == "":
            flags.add("NONSPACING_MARK")
        if self.strip_accents.normalize_str(c) == "":
            flags.add("COMBINING_MARK")
        if len(self.ws_split.pre_tokenize_str(f"a{c}b")) == 2:
            flags.add("WHITESPACE")
        if len(self.bert_pre.pre_tokenize_str(f"a{c}b")) == 3:
            flags.add("PUNCTUATION")
        words = [piece for piece, _ in self.whitespace.pre_tokenize_str(f"a{c}b")]
        if words == [f"a{c}b"]:
            flags.add("WORD")
        elif words == ["a", "b"]:
            flags.add("REGEX_SPACE")
        if len(self.digits.pre_tokenize_str(f"a{c}b")) == 3:
            flags.add("NUMERIC")
        lower = self.lower.normalize_str(c)
        nfkd = self.nfkd.normalize_str(c)
        return flags, (lower if lower != c else None), (nfd if nfd != c else None), (nfkd if nfkd != c else None)

    def has_combining_class(self, cp: int) -> bool:
        """Whether tokenizers' canonical ordering moves this (decomposition-free) character: class > 0."""
        c = chr(cp)
        before_240 = self.nfd.normalize_str("\u0345" + c) != "\u0345" + c  # moves in front of class 240
        after_1 = self.nfd.normalize_str(c + "\u0334") != c + "\u0334"  # goes behind class 1
        return before_240 or after_1

    def joins_letter(self, cp: int) -> bool:
        """Whether tokenizers' grapheme splitting keeps this character with a preceding letter."""
        return self.attach.normalize_str("A" + chr(cp)) == "X"


def grapheme_properties() -> dict[int, tuple[int, bool, int]]:
    """(GCB index, Extended_Pictographic, InCB index) of every code point that is not (Other, no, None)."""
    found: dict[int, list] = {}
    for index, name in enumerate(GCB[1:], 1):
        pattern = regex.compile(rf"\p{{Grapheme_Cluster_Break={name}}}")
        for cp in code_points():
            if pattern.match(chr(cp)):
                found.setdefault(cp, [0, False, 0])[0] = index
    pictographic = regex.compile(r"\p{Extended_Pictographic}")
    for cp in code_points():
        if pictographic.match(chr(cp)):
            found.setdefault(cp, [0, False, 0])[1] = True
    for index, name in enumerate(INCB[1:], 1):
        pattern = regex.compile(rf"\p{{Indic_Conjunct_Break={name}}}")
        for cp in code_points():
            if pattern.match(chr(cp)):
                found.setdefault(cp, [0, False, 0])[2] = index
    return {cp: tuple(value) for cp, value in found.items()}


def compositions(probe: Probe, ccc: dict[int, int]) -> dict[tuple[int, int], int]:
    """Canonical pairs tokenizers' NFC composes: (starter, second) -> composite."""
    pairs = {}
    for cp in code_points():
        decomposition = unicodedata.decomposition(chr(cp))
        if not decomposition or decomposition.startswith("<"):
            continue
        parts = [int(part, 16) for part in decomposition.split()]
        if len(parts) != 2 or unicodedata.normalize("NFC", chr(cp)) != chr(cp):
            continue  # singletons and excluded compositions never compose
        if probe.nfc.normalize_str(chr(parts[0]) + chr(parts[1])) == chr(cp):
            pairs[(parts[0], parts[1])] = cp
    return pairs


HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
"""Hangul syllables decompose algorithmically in the core (checked here against tokenizers), not by table."""


def hangul_decomposition(cp: int) -> str:
    """The Unicode standard's arithmetic decomposition of a precomposed Hangul syllable."""
    index = cp - HANGUL_FIRST
    lead, vowel, trail = 0x1100 + index // 588, 0x1161 + (index % 588) // 28, 0x11A7 + index % 28
    return chr(lead) + chr(vowel) + (chr(trail) if trail != 0x11A7 else "")


def main() -> None:
    probe = Probe()
    records: dict[tuple[int, int, int], int] = {}
    per_cp = [0] * 0x110000
    lower, nfd, nfkd = {}, {}, {}
    ccc: dict[int, int] = {}
    graphemes = grapheme_properties()
    mismatched_joins = []
    for cp in code_points():
        flags, low, dec, comp = probe.facts(cp)
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            assert dec == comp == hangul_decomposition(cp), f"U+{cp:04X}: tokenizers' NFD is {dec!r}"
            dec = comp = None  # the core computes these
        if low is not None:
            flags.add("HAS_LOWER")
            lower[cp] = low
        if dec is not None:
            flags.add("HAS_NFD")
            nfd[cp] = dec
        if comp is not None:
            flags.add("HAS_NFKD")
            nfkd[cp] = comp
        klass = 0
        if dec is None and unicodedata.combining(chr(cp)) and probe.has_combining_class(cp):
            klass = unicodedata.combining(chr(cp))
        if klass:
            ccc[cp] = klass
        gcb, pictographic, incb = graphemes.get(cp, (0, False, 0))
        if pictographic:
            flags.add("EXTENDED_PICTOGRAPHIC")
        joins = GCB[gcb] in ("Extend", "ZWJ", "SpacingMark")
        if joins != probe.joins_letter(cp):
            mismatched_joins.append(cp)
        bits = sum(1 << FLAGS.index(flag) for flag in flags) | (incb << 14)
        key = (bits, klass, gcb)
        per_cp[cp] = records.setdefault(key, len(records))
    if mismatched_joins:
        sample = ", ".join(f"U+{cp:04X}" for cp in mismatched_joins[:20])
        print(f"note: {len(mismatched_joins)} characters where regex's grapheme data and tokenizers disagree on "
              f"joining a letter ({sample}); tokenizers wins", file=sys.stderr)
        for cp in mismatched_joins:  # take tokenizers' view: Extend if it joins, Other if not
            bits, klass, gcb = next(k for k, v in records.items() if v == per_cp[cp])
            gcb = GCB.index("Extend") if probe.joins_letter(cp) else 0
            per_cp[cp] = records.setdefault((bits, klass, gcb), len(records))
    pairs = compositions(probe, ccc)
    write_header(records, per_cp, lower, nfd, nfkd, pairs)


def write_header(records, per_cp, lower, nfd, nfkd, pairs) -> None:
    """Emit the two-stage property table, the mapping tables and the composition table as C."""
    assert len(records) < 1 << 16
    blocks: dict[tuple[int, ...], int] = {}
    stage1 = []
    for start in range(0, 0x110000, BLOCK):
        block = tuple(per_cp[start : start + BLOCK])
        stage1.append(blocks.setdefault(block, len(blocks)))
    index_type = "uint8_t" if len(records) <= 256 else "uint16_t"
    pool: list[int] = [0]
    pool_index: dict[str, int] = {}

    def intern(text: str) -> int:
        if text not in pool_index:
            pool_index[text] = len(pool)
            pool.extend([len(text), *map(ord, text)])
        return pool_index[text]

    def mapping_table(name: str, table: dict[int, str]) -> list[str]:
        keys = sorted(table)
        return [
            f"static const uint32_t m2v_{name}_keys[{len(keys)}] = {{{_ints(keys)}}};",
            f"static const uint32_t m2v_{name}_values[{len(keys)}] = {{{_ints(intern(table[k]) for k in keys)}}};",
            f"#define M2V_{name.upper()}_COUNT {len(keys)}",
        ]

    lines = [
        "/* Generated by scripts/gen_unicode_tables.py: do not edit. */",
        f"/* Read off tokenizers {tokenizers.__version__} (per character), Python {sys.version.split()[0]}'s",
        f"   unicodedata {unicodedata.unidata_version} (combining classes, compositions) and regex {regex.__version__}",
        "   (grapheme cluster breaks). See m2v_unicode.h for how the tables are used. */",
        f'#define M2V_UNICODE_SOURCE "tokenizers {tokenizers.__version__}"',
        f"#define M2V_UPROP_BLOCK {BLOCK}",
        "static const uint16_t m2v_uprop_records[][3] = {",
        *(f"    {{{bits}, {klass}, {gcb}}}," for (bits, klass, gcb), _ in sorted(records.items(), key=lambda i: i[1])),
        "};",
        f"static const uint16_t m2v_uprop_stage1[{len(stage1)}] = {{{_ints(stage1)}}};",
        f"static const {index_type} m2v_uprop_stage2[{len(blocks)}][{BLOCK}] = {{",
        *(f"    {{{_ints(block)}}}," for block in blocks),
        "};",
    ]
    ascii_records = [sorted(records.items(), key=lambda i: i[1])[per_cp[cp]][0] for cp in range(128)]
    lines += [
        "/* The records of ASCII, for the inline lookup in m2v_unicode.h: {flags, ccc, gcb} per code point. */",
        "const m2v_uprop m2v_ascii_props[128] = {",
        *(f"    {{{bits}, {klass}, {gcb}}}," for bits, klass, gcb in ascii_records),
        "};",
    ]
    for name, table in (("lower", lower), ("nfd", nfd), ("nfkd", nfkd)):
        lines += mapping_table(name, table)
    keys = sorted(pairs)
    lines += [
        f"static const uint64_t m2v_compose_keys[{len(keys)}] = {{{_ints((a << 21) | b for a, b in keys)}}};",
        f"static const uint32_t m2v_compose_values[{len(keys)}] = {{{_ints(pairs[k] for k in keys)}}};",
        f"#define M2V_COMPOSE_COUNT {len(keys)}",
        f"static const uint32_t m2v_pool[{len(pool)}] = {{{_ints(pool)}}};",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(_wrap(line) for line in lines) + "\n", encoding="ascii")
    print(f"wrote {OUT}: {len(records)} records, {len(blocks)} blocks, {len(lower)} lowercase, {len(nfd)} NFD, "
          f"{len(nfkd)} NFKD mappings, {len(pairs)} compositions, pool {len(pool)} code points", file=sys.stderr)


def _ints(values) -> str:
    return ",".join(str(int(v)) for v in values)


def _wrap(line: str, width: int = 118) -> str:
    """Break long initialiser lines at commas."""
    if len(line) <= width:
        return line
    out, current = [], ""
    for part in line.split(","):
        if current and len(current) + len(part) + 1 > width:
            out.append(current + ",")
            current = part
        else:
            current = f"{current},{part}" if current else part
    out.append(current)
    return "\n".join(out)


if __name__ == "__main__":
    main()
