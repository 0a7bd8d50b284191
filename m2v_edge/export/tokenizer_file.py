"""Compile a tokenizer.json into the native core's tokenizer file (`tokenizer.m2v`), with the core's help for the
double-array tries (so this needs the core, as checking the file against tokenizers does anyway).

The byte layout is documented in m2v_edge/_native/m2v_format.h; this module writes it. A pipeline the core does not
reproduce raises `Unsupported` with the reason, and the bundle then tokenizes through tokenizers.

What tokenizers resolves itself (the vocabulary as its model sees it, added tokens with their final ids, the
normalized form of normalized added tokens) is read from a loaded `tokenizers.Tokenizer`, not re-derived from the
JSON, so that the file holds what tokenizers would use.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from m2v_edge.runtime import native

MAGIC = b"M2VTOKEN"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQQ")
SECTION = struct.Struct("<IIQQ")
MODEL = struct.Struct("<IiIIIIIId")
_MODEL_KINDS = {"WordPiece": 1, "Unigram": 2}

(SEC_MODEL, SEC_NORMALIZER, SEC_PRETOKENIZER, SEC_STRING_TABLE, SEC_STRINGS, SEC_VOCAB, SEC_SCORES, SEC_ADDED_TOKENS,
 SEC_ADDED_RAW, SEC_ADDED_NORMALIZED, SEC_PRECOMPILED, SEC_BYTE_IDS) = range(1, 13)
UNIT_BYTES = 12
"""A double-array unit: u32 base, u32 check, i32 value."""
_ITEM_SIZES = {SEC_MODEL: MODEL.size, SEC_NORMALIZER: 16, SEC_PRETOKENIZER: 16, SEC_STRING_TABLE: 8, SEC_STRINGS: 1,
               SEC_VOCAB: UNIT_BYTES, SEC_SCORES: 8, SEC_ADDED_TOKENS: 8, SEC_ADDED_RAW: UNIT_BYTES,
               SEC_ADDED_NORMALIZED: UNIT_BYTES, SEC_PRECOMPILED: 1, SEC_BYTE_IDS: 4}

_NORMALIZERS = {"Lowercase": 2, "StripAccents": 3, "NFD": 4, "NFKD": 5, "NFC": 6, "NFKC": 7}
_BERT, _STRIP, _PREPEND, _REPLACE, _PRECOMPILED = 1, 8, 9, 10, 11
_PRE_SIMPLE = {"BertPreTokenizer": 1, "WhitespaceSplit": 2, "Whitespace": 3}
_METASPACE, _PUNCTUATION, _DIGITS, _CHAR_DELIMITER, _SPLIT = 4, 5, 6, 7, 8
_BEHAVIORS = {"Removed": 0, "Isolated": 1, "MergedWithPrevious": 2, "MergedWithNext": 3, "Contiguous": 4}
_SINGLE_WORD, _LSTRIP, _RSTRIP = 1, 2, 4


class Unsupported(Exception):
    """The core does not reproduce this tokenizer's pipeline; the message says which part."""


def compile_tokenizer(spec: dict[str, Any], tokenizer: Tokenizer, id_limit: int) -> bytes:
    """The tokenizer file for a parsed tokenizer.json and the same file loaded by tokenizers.

    :param id_limit: the bundle's table rows: every id the file can give must be below it.
    """
    writer = _Writer()
    normalizer = spec.get("normalizer")
    for op in _normalizer_ops(normalizer, writer):
        writer.op(SEC_NORMALIZER, *op)
    for op in _pretokenizer_ops(spec.get("pre_tokenizer"), writer):
        writer.op(SEC_PRETOKENIZER, *op)
    _model(spec.get("model"), tokenizer, writer, id_limit)
    _added_tokens(tokenizer, writer, id_limit)
    return writer.to_bytes()


# ------------------------------------------------------------------------------------------------ pipeline parts


def _normalizer_ops(spec: Any, writer: _Writer) -> list[tuple[int, int, int, int]]:
    if spec is None:
        return []
    kind = _kind(spec, "normalizer")
    if kind == "Sequence":
        return [op for member in _list(spec, "normalizers") for op in _normalizer_ops(member, writer)]
    if kind in _NORMALIZERS:
        return [(_NORMALIZERS[kind], 0, 0, 0)]
    if kind == "BertNormalizer":
        lowercase = _bool(spec, "lowercase", True)
        strip = spec.get("strip_accents")
        strip = lowercase if strip is None else _bool(spec, "strip_accents", lowercase)
        flags = (_bool(spec, "clean_text", True) * 1 | _bool(spec, "handle_chinese_chars", True) * 2
                 | strip * 4 | lowercase * 8)
        return [(_BERT, flags, 0, 0)]
    if kind == "Strip":
        return [(_STRIP, _bool(spec, "strip_left", True) * 1 | _bool(spec, "strip_right", True) * 2, 0, 0)]
    if kind == "Prepend":
        return [(_PREPEND, 0, writer.string(_str(spec, "prepend")), 0)]
    if kind == "Replace":
        pattern = _literal_pattern(spec, "Replace")
        return [(_REPLACE, 0, writer.string(pattern), writer.string(_str(spec, "content")))]
    if kind == "Precompiled":
        charsmap = spec.get("precompiled_charsmap")
        if not isinstance(charsmap, str) or not charsmap:
            raise Unsupported("a Precompiled normalizer without a charsmap")
        writer.section(SEC_PRECOMPILED, base64.b64decode(charsmap), 1)
        return [(_PRECOMPILED, 0, 0, 0)]
    raise Unsupported(f"the {kind} normalizer")


def _pretokenizer_ops(spec: Any, writer: _Writer) -> list[tuple[int, int, int, int]]:
    if spec is None:
        return []
    kind = _kind(spec, "pre-tokenizer")
    if kind == "Sequence":
        return [op for member in _list(spec, "pretokenizers") for op in _pretokenizer_ops(member, writer)]
    if kind in _PRE_SIMPLE:
        return [(_PRE_SIMPLE[kind], 0, 0, 0)]
    if kind == "Metaspace":
        scheme = spec.get("prepend_scheme", "always")
        if spec.get("add_prefix_space") is False:
            scheme = "never"
        if scheme not in ("always", "never"):
            raise Unsupported(f"Metaspace with prepend_scheme {scheme!r}")
        flags = (scheme == "always") * 1 | (spec.get("split", True) is not False) * 2
        return [(_METASPACE, flags, writer.string(_char(spec, "replacement")), 0)]
    if kind == "Punctuation":
        return [(_PUNCTUATION, _behavior(spec), 0, 0)]
    if kind == "Digits":
        return [(_DIGITS, _bool(spec, "individual_digits", False) * 1, 0, 0)]
    if kind == "CharDelimiterSplit":
        return [(_CHAR_DELIMITER, 0, writer.string(_char(spec, "delimiter")), 0)]
    if kind == "Split":
        pattern = _literal_pattern(spec, "Split")
        flags = _behavior(spec) | (16 if _bool(spec, "invert", False) else 0)
        return [(_SPLIT, flags, writer.string(pattern), 0)]
    raise Unsupported(f"the {kind} pre-tokenizer")


def _model(spec: Any, tokenizer: Tokenizer, writer: _Writer, id_limit: int) -> None:
    kind = _kind(spec, "model")
    if kind not in _MODEL_KINDS:
        raise Unsupported(f"the {kind} model")
    vocab = tokenizer.get_vocab(with_added_tokens=False)  # as tokenizers' model holds it (duplicates resolved)
    _check_ids(vocab.values(), id_limit, "vocabulary")
    unk_score, flags, prefix, max_chars = 0.0, 0, 0, 0
    if kind == "WordPiece":
        unk = spec.get("unk_token", "[UNK]")
        if unk not in vocab:
            raise Unsupported(f"a WordPiece unk_token {unk!r} missing from the vocabulary")
        unk_id = vocab[unk]
        prefix = writer.string(_str(spec, "continuing_subword_prefix", "##"))
        max_chars = spec.get("max_input_chars_per_word", 100)
        if not isinstance(max_chars, int) or isinstance(max_chars, bool) or not 0 <= max_chars < 1 << 32:
            raise Unsupported(f"max_input_chars_per_word {max_chars!r}")
    else:
        unk_id = spec.get("unk_id")
        if not isinstance(unk_id, int) or isinstance(unk_id, bool) or unk_id < 0:
            raise Unsupported("a Unigram model without unk_id (tokenizers fails on unknown characters)")
        pieces = spec.get("vocab")
        scores = np.array([float(score) for _, score in pieces], dtype="<f8")
        writer.section(SEC_SCORES, scores.tobytes(), 8)
        unk_score = float(scores.min()) - 10.0
        if spec.get("byte_fallback"):
            flags = 1
            byte_ids = np.array([vocab.get(f"<0x{byte:02X}>", -1) for byte in range(256)], dtype="<i4")
            writer.section(SEC_BYTE_IDS, byte_ids.tobytes(), 4)
    _check_ids([unk_id], id_limit, "unknown token")
    writer.trie(SEC_VOCAB, _encoded(vocab))
    writer.section(SEC_MODEL, MODEL.pack(_MODEL_KINDS[kind], unk_id, flags, max_chars, prefix, id_limit, 0, 0,
                                         unk_score), MODEL.size)


def _added_tokens(tokenizer: Tokenizer, writer: _Writer, id_limit: int) -> None:
    records, raw, normalized = [], {}, {}
    normalizer = tokenizer.normalizer
    for token_id, token in sorted(tokenizer.get_added_tokens_decoder().items()):
        if not token.content:
            continue  # tokenizers ignores empty added tokens
        _check_ids([token_id], id_limit, f"added token {token.content!r}")
        index = len(records)
        records.append((token_id, token.single_word * _SINGLE_WORD | token.lstrip * _LSTRIP | token.rstrip * _RSTRIP))
        if token.normalized:
            pattern = normalizer.normalize_str(token.content) if normalizer is not None else token.content
            target = normalized
        else:
            pattern, target = token.content, raw
        key = _utf8(pattern, "an added token")
        if key in target:
            raise Unsupported(f"two added tokens that match the same text {pattern!r}")
        target[key] = index
    if not records:
        return
    writer.section(SEC_ADDED_TOKENS, np.array(records, dtype="<i4").tobytes(), 8)
    if raw:
        writer.trie(SEC_ADDED_RAW, raw)
    if normalized:
        writer.trie(SEC_ADDED_NORMALIZED, normalized)


# ----------------------------------------------------------------------------------------------- the trie


def build_trie(entries: dict[bytes, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (u8), children (u32, one more than nodes) and values (i32) of a byte trie in breadth-first order
    (node 0 the root; node i's children are nodes children[i] .. children[i+1]-1), for keys -> values (keys
    non-empty). The native core turns it into the file's double array."""
    keys = sorted(entries)
    n = len(keys)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    values = np.fromiter((entries[key] for key in keys), dtype=np.int64, count=n)
    flat = np.frombuffer(b"".join(keys), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    common = _common_prefixes(flat, starts, lengths)
    created = lengths - common  # nodes each key adds (>= 1: keys are unique and sorted)
    key_of = np.repeat(np.arange(n), created)
    first_new = np.cumsum(created) - created
    depth = np.repeat(common + 1, created) + (np.arange(len(key_of)) - np.repeat(first_new, created))
    labels = flat[starts[key_of] + depth - 1]
    # The parent of a key's first new node is the node at depth `common` on its path, made by the last earlier
    # key whose common prefix with its predecessor is shorter than that; every other new node's parent is the
    # node made just before it.
    maker = _previous_shorter(common)
    parent = np.arange(len(key_of)) - 1
    firsts = first_new
    has_parent_node = common > 0
    parent[firsts[~has_parent_node]] = -1  # the root
    makers = maker[has_parent_node]
    parent[firsts[has_parent_node]] = first_new[makers] + (common[has_parent_node] - common[makers] - 1)
    order = np.lexsort((key_of, depth))  # breadth-first: by depth, then in key order
    bfs = np.empty(len(order), dtype=np.int64)
    bfs[order] = np.arange(1, len(order) + 1)
    parent_bfs = np.where(parent < 0, 0, bfs[np.maximum(parent, 0)])[order]
    total = len(order) + 1
    children = (np.searchsorted(parent_bfs, np.arange(total + 1), side="left") + 1).astype("<u4")
    node_values = np.full(total, -1, dtype="<i4")
    ends = depth == lengths[key_of]
    node_values[bfs[ends]] = values[key_of[ends]]
    node_labels = np.zeros(total, dtype=np.uint8)
    node_labels[bfs] = labels
    return node_labels, children, node_values


def _common_prefixes(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Length of the common prefix of each sorted key with the one before it (0 for the first)."""
    n = len(starts)
    common = np.zeros(n, dtype=np.int64)
    if n < 2:
        return common
    alive = np.arange(1, n)  # keys whose common prefix may still grow
    step = 0
    while alive.size:
        same = (lengths[alive] > step) & (lengths[alive - 1] > step)
        same[same] = flat[starts[alive[same]] + step] == flat[starts[alive[same] - 1] + step]
        alive = alive[same]
        common[alive] += 1
        step += 1
    return common


def _previous_shorter(common: np.ndarray) -> np.ndarray:
    """For each key i, the largest j < i with common[j] < common[i] (-1 if none): the key that made the node at
    depth common[i] on key i's path."""
    result = np.full(len(common), -1, dtype=np.int64)
    stack: list[int] = []
    values = common.tolist()
    for index, value in enumerate(values):
        while stack and values[stack[-1]] >= value:
            stack.pop()
        if stack:
            result[index] = stack[-1]
        stack.append(index)
    return result


# ------------------------------------------------------------------------------------------------- the writer


class _Writer:
    """Collects sections and strings, then lays out the file."""

    def __init__(self) -> None:
        self.sections: dict[int, tuple[bytes, int]] = {}
        self.ops: dict[int, list[bytes]] = {SEC_NORMALIZER: [], SEC_PRETOKENIZER: []}
        self.strings: list[bytes] = []

    def string(self, text: str) -> int:
        self.strings.append(_utf8(text, "an op's string"))
        return len(self.strings) - 1

    def op(self, section: int, code: int, flags: int, arg1: int, arg2: int) -> None:
        self.ops[section].append(struct.pack("<IIII", code, flags, arg1, arg2))

    def section(self, kind: int, data: bytes, item: int) -> None:
        assert kind not in self.sections and item == _ITEM_SIZES[kind] and len(data) % item == 0
        self.sections[kind] = (data, len(data) // item)

    def trie(self, kind: int, entries: dict[bytes, int]) -> None:
        labels, children, values = build_trie(entries)
        self.section(kind, native.double_array(labels.tobytes(), children.tobytes(), values.tobytes()), UNIT_BYTES)

    def to_bytes(self) -> bytes:
        for kind, ops in self.ops.items():
            if ops:
                self.section(kind, b"".join(ops), 16)
        if self.strings:
            offsets = np.cumsum([0, *map(len, self.strings)])[:-1]
            table = np.column_stack([offsets, list(map(len, self.strings))]).astype("<u4")
            self.section(SEC_STRING_TABLE, table.tobytes(), 8)
            self.section(SEC_STRINGS, b"".join(self.strings), 1)
        kinds = sorted(self.sections)
        offset = _aligned(HEADER.size + SECTION.size * len(kinds))
        table, body = [], []
        for kind in kinds:
            data, count = self.sections[kind]
            table.append(SECTION.pack(kind, _ITEM_SIZES[kind], offset, count))
            padded = data + b"\0" * (_aligned(len(data)) - len(data))
            body.append(padded)
            offset += len(padded)
        head = HEADER.pack(MAGIC, FORMAT_VERSION, len(kinds), offset, 0) + b"".join(table)
        head += b"\0" * (_aligned(len(head)) - len(head))
        return head + b"".join(body)


# ------------------------------------------------------------------------------------------------ small parsers


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8


def _encoded(vocab: dict[str, int]) -> dict[bytes, int]:
    return {_utf8(token, "a vocabulary entry"): token_id for token, token_id in vocab.items() if token}


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise Unsupported(f"{what} that is not valid Unicode ({text!r})") from None


def _check_ids(ids: Any, limit: int, what: str) -> None:
    if any(not 0 <= token_id < limit for token_id in ids):
        raise Unsupported(f"a {what} id outside the table's {limit} rows")


def _kind(spec: Any, what: str) -> str:
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise Unsupported(f"a {what} without a type")
    return spec["type"]


def _list(spec: dict, key: str) -> list:
    value = spec.get(key)
    if not isinstance(value, list):
        raise Unsupported(f"a Sequence without {key}")
    return value


def _bool(spec: dict, key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise Unsupported(f"{spec.get('type')}.{key} = {value!r}")
    return value


def _str(spec: dict, key: str, default: str | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str):
        raise Unsupported(f"{spec.get('type')}.{key} = {value!r}")
    return value


def _char(spec: dict, key: str) -> str:
    value = _str(spec, key)
    if len(value) != 1:
        raise Unsupported(f"{spec.get('type')}.{key} = {value!r} (one character expected)")
    return value


def _literal_pattern(spec: dict, kind: str) -> str:
    pattern = spec.get("pattern")
    if not isinstance(pattern, dict) or not isinstance(pattern.get("String"), str) or not pattern["String"]:
        raise Unsupported(f"a {kind} with a regular-expression or empty pattern")
    return pattern["String"]


def _behavior(spec: dict) -> int:
    behavior = spec.get("behavior", "Isolated")
    if behavior not in _BEHAVIORS:
        raise Unsupported(f"{spec.get('type')} behavior {behavior!r}")
    return _BEHAVIORS[behavior]
