"""An exact fast path for ASCII texts through BERT-style WordPiece tokenizers.

Most Model2Vec models (the potion family among them) tokenise with tokenizers' `BertNormalizer`, `BertPreTokenizer`
and `WordPiece`. On ASCII text that pipeline comes down to a few byte operations: the normalizer deletes control
characters and turns tab, newline and carriage return into spaces (`clean_text`) and maps A-Z to a-z (`lowercase`;
accent stripping, CJK padding and Unicode normalisation change nothing in ASCII); the pre-tokenizer splits on
whitespace and isolates each of the 32 ASCII punctuation characters; WordPiece then takes, from each word, the
longest prefix in the vocabulary, and continues with `##`-prefixed pieces. `AsciiWordPiece` does this for a whole
chunk of texts at once with one `bytes.translate`, one regular-expression pass and one dict lookup per word: several
times faster than tokenizers itself, with the same ids (tests compare the two on every ASCII character, on fuzzed texts
and on the Debian corpus).

A text it does not take (one with a non-ASCII character, or containing the text of an added token such as `[CLS]`,
which tokenizers matches before it normalises) and a tokenizer whose pipeline is anything else go through tokenizers.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np

SEPARATOR = "\xff"
"""Joins a chunk's texts into one string: never part of an ASCII text, so it marks every text boundary."""
WORD_CACHE_SIZE = 1 << 16
"""Words outside the vocabulary whose WordPiece split is remembered (about 100 bytes each); then it starts over."""

_PUNCTUATION = string.punctuation
"""What `BertPreTokenizer` isolates in ASCII: Rust's `is_ascii_punctuation` (Unicode's P* are a subset here)."""
_WHITESPACE = " \t\n\r\x0b\x0c"
"""Rust's `char::is_whitespace` in ASCII (the Unicode White_Space property; not \\x1c-\\x1f)."""
_CONTROLS = bytes(c for c in range(32) if c not in b"\t\n\r") + b"\x7f"
"""ASCII characters `BertNormalizer(clean_text=True)` deletes (category Cc, except tab, newline, return)."""
_IDENTITY_NORMALIZERS = frozenset({"NFC", "NFD", "NFKC", "NFKD", "StripAccents"})
"""Normalizers that change no ASCII text."""
_SEPARATOR_ID = -1
_MISS = -2


class AsciiWordPiece:
    """BERT-style WordPiece tokenisation of ASCII texts, equal to tokenizers' (see the module docstring).

    Build it with `from_spec`, which returns None for a tokenizer it does not reproduce exactly. Thread-safe: the
    only shared state is a cache of WordPiece splits whose entries never change.
    """

    def __init__(
        self,
        vocab: dict[str, int],
        *,
        unk_token: str,
        prefix: str,
        max_word_chars: int,
        clean_text: bool,
        lowercase: bool,
        raw_patterns: Sequence[str] = (),
        normalized_patterns: Sequence[str] = (),
    ) -> None:
        """
        :param vocab: the WordPiece vocabulary (`unk_token` must be in it); taken over, not copied.
        :param prefix: the continuing-subword prefix (`##`).
        :param max_word_chars: longer words become the unk token.
        :param raw_patterns: added-token texts tokenizers matches in the raw text; texts holding one are not taken.
        :param normalized_patterns: added-token texts tokenizers matches in the normalised text (already normalised).
        """
        self._unk = vocab[unk_token]
        self._prefix = prefix
        self._max_word_chars = max_word_chars
        self._longest = max(map(len, vocab))
        too_long = [token for token in vocab if len(token) > max_word_chars]  # pieces, never whole words
        self._vocab = dict(vocab) if too_long else vocab
        """Every entry, for WordPiece's pieces."""
        for token in too_long:
            del vocab[token]
        vocab[SEPARATOR] = _SEPARATOR_ID  # no ASCII word or piece is the separator, so this hides nothing
        self._words = vocab
        """Whole word -> token id (tokenizers' WordPiece first tries the whole word), the separator -> -1. It is the
        caller's `vocab`, taken over and changed in place: a second copy of a large vocabulary costs megabytes."""
        self._splits: dict[str, tuple[int, ...]] = {}
        table = bytearray(range(256))
        if clean_text:
            table[ord("\t")] = table[ord("\n")] = table[ord("\r")] = ord(" ")
        if lowercase:
            table[ord("A") : ord("Z") + 1] = bytes(range(ord("a"), ord("z") + 1))
        self._table = bytes(table)
        self._delete = _CONTROLS if clean_text else b""
        isolated = re.escape(_PUNCTUATION + SEPARATOR)
        self._split_words = re.compile(f"[^{re.escape(_WHITESPACE)}{isolated}]+|[{isolated}]").findall
        self._find_raw = _finder(raw_patterns)
        self._find_normalized = _finder(normalized_patterns)

    @classmethod
    def from_spec(cls, spec: Any, normalize: Callable[[str], str]) -> AsciiWordPiece | None:
        """The fast path for a parsed `tokenizer.json`, or None when its pipeline is not one this class reproduces.

        :param normalize: the tokenizer's own normalizer (`tokenizer.normalizer.normalize_str`, or identity), used on
            the texts of normalised added tokens.
        """
        if not isinstance(spec, dict):
            return None
        effects = _normalizer_effects(spec.get("normalizer"))
        model = spec.get("model")
        pre_tokenizer = spec.get("pre_tokenizer")
        if effects is None or not isinstance(model, dict) or not isinstance(pre_tokenizer, dict):
            return None
        if pre_tokenizer.get("type") != "BertPreTokenizer" or model.get("type") != "WordPiece":
            return None
        vocab, unk_token = model.get("vocab"), model.get("unk_token", "[UNK]")
        prefix = model.get("continuing_subword_prefix", "##")
        max_word_chars = model.get("max_input_chars_per_word", 100)
        if not (isinstance(vocab, dict) and vocab and isinstance(unk_token, str) and unk_token in vocab):
            return None  # without an unk token in the vocabulary tokenizers fails on unknown words: leave that to it
        if not isinstance(prefix, str) or not isinstance(max_word_chars, int) or isinstance(max_word_chars, bool):
            return None
        raw, normalized = [], []
        for token in spec.get("added_tokens") or []:
            content = token.get("content") if isinstance(token, dict) else None
            if not isinstance(content, str):
                return None
            if token.get("normalized", not token.get("special", False)):
                content = normalize(content)
                if content.isascii():
                    normalized.append(content)
            elif content.isascii():
                raw.append(content)  # a non-ASCII added token never matches an ASCII text
        try:
            return cls(
                vocab, unk_token=unk_token, prefix=prefix, max_word_chars=max_word_chars, clean_text="clean" in effects,
                lowercase="lower" in effects, raw_patterns=raw, normalized_patterns=normalized,
            )
        except RecursionError:  # added tokens branching too deep for one regular expression: tokenizers takes all
            return None

    def takes(self, text: str) -> bool:
        """Whether this path tokenises `text`: ASCII, holding no added token's text."""
        return text.isascii() and not self._holds_added_token(text)

    def partition(self, texts: Sequence[str]) -> tuple[list[int], list[int]]:
        """Split the indices of `texts` into those this path takes and those tokenizers must take."""
        taken = [index for index, text in enumerate(texts) if text.isascii()]
        if self._find_raw or self._find_normalized:
            # One pass over the whole chunk finds whether any text needs a closer look (joins can only add hits).
            if taken and self._holds_added_token("\n".join([texts[index] for index in taken])):
                taken = [index for index in taken if not self._holds_added_token(texts[index])]  # all ASCII
        if len(taken) == len(texts):
            return taken, []
        chosen = set(taken)
        return taken, [index for index in range(len(texts)) if index not in chosen]

    def tokenize(self, texts: Sequence[str], max_length: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids of ASCII texts that `partition` took, truncated to `max_length` tokens (unk ids kept).

        :return: (ids, offsets, lengths), all int64: text i's ids are `ids[offsets[i] : offsets[i] + lengths[i]]`.
        """
        words = self._split_words(self._normalize(SEPARATOR.join(texts)))
        ids = np.fromiter(map(self._words.get, words, repeat(_MISS)), dtype=np.int64, count=len(words))
        misses = np.flatnonzero(ids == _MISS)
        if misses.size:
            ids = self._expand(ids, misses, [self._pieces(words[index]) for index in misses.tolist()])
        bounds = np.flatnonzero(ids == _SEPARATOR_ID)
        ids[bounds] = 0  # any valid row: separators lie outside every text's range
        offsets = np.empty(len(texts), dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = bounds + 1
        lengths = np.empty(len(texts), dtype=np.int64)
        lengths[:-1] = bounds - offsets[:-1]
        lengths[-1] = len(ids) - offsets[-1]
        if max_length is not None:
            np.minimum(lengths, max_length, out=lengths)
        return ids, offsets, lengths

    def tokenize_one(self, text: str, max_length: int | None) -> list[int]:
        """`tokenize` for one text, as a list (the latency path: no numpy)."""
        ids: list[int] = []
        for word in self._split_words(self._normalize(text)):
            token_id = self._words.get(word, _MISS)
            if token_id == _MISS:
                ids.extend(self._pieces(word))
            else:
                ids.append(token_id)
        return ids if max_length is None else ids[:max_length]

    def _holds_added_token(self, text: str) -> bool:
        if self._find_raw and self._find_raw(text):
            return True
        return bool(self._find_normalized and self._find_normalized(self._normalize(text)))

    def _normalize(self, text: str) -> str:
        """The normalizer on ASCII text (and separators): one `bytes.translate`, far faster than `str.translate`."""
        return text.encode("latin-1").translate(self._table, self._delete).decode("latin-1")

    @staticmethod
    def _expand(ids: np.ndarray, misses: np.ndarray, pieces: list[tuple[int, ...]]) -> np.ndarray:
        """Replace each missed word's placeholder in `ids` by its pieces."""
        counts = np.ones(len(ids), dtype=np.int64)
        counts[misses] = [len(split) for split in pieces]
        expanded = np.repeat(ids, counts)
        starts = np.cumsum(counts) - counts  # where each word's ids begin in `expanded`
        piece_counts = counts[misses]
        total = int(piece_counts.sum())
        first = np.cumsum(piece_counts) - piece_counts
        positions = np.repeat(starts[misses] - first, piece_counts) + np.arange(total)
        expanded[positions] = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=total)
        return expanded

    def _pieces(self, word: str) -> tuple[int, ...]:
        """WordPiece split of a word the vocabulary does not hold whole (cached)."""
        pieces = self._splits.get(word)
        if pieces is None:
            pieces = self._wordpiece(word)
            if len(self._splits) >= WORD_CACHE_SIZE:
                self._splits.clear()
            self._splits[word] = pieces
        return pieces

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """tokenizers' `WordPiece::tokenize`: greedy longest match, `prefix` before every piece but the first, the
        unk token alone for a word that is too long or has a position no piece matches."""
        if len(word) > self._max_word_chars:
            return (self._unk,)
        vocab, prefix, longest = self._vocab, self._prefix, self._longest
        pieces = []
        start = 0
        while start < len(word):
            lead = prefix if start else ""
            end = min(len(word), start + longest - len(lead))  # no vocabulary entry is longer than `longest`
            while end > start and lead + word[start:end] not in vocab:
                end -= 1
            if end == start:
                return (self._unk,)
            pieces.append(vocab[lead + word[start:end]])
            start = end
        return tuple(pieces)


def _finder(patterns: Sequence[str]) -> Callable[[str], object] | None:
    """A search for any of `patterns` in a text: one regular expression over the patterns' trie.

    A plain alternation makes the regex engine try every pattern at every position: with the thousands of added
    tokens a custom-vocabulary distillation writes, scanning 2,000 Debian documents took 1.9 s for 1,000 patterns
    and 43 s for 20,000. The trie shares prefixes (0.06 s and 0.12 s; compiling 20,000 takes about 1 s, once).
    A pattern that another one starts with is enough on its own: "any of them occurs" is all that is asked.
    """
    if not patterns:
        return None
    trie: dict[str, Any] = {}
    for pattern in sorted(set(patterns), key=len):
        node = trie
        for char in pattern:
            if _END in node:
                break  # a shorter pattern is a prefix of this one and already matches wherever it would
            node = node.setdefault(char, {})
        else:
            node.clear()
            node[_END] = {}
    if _END in trie:
        return lambda text: True  # an empty pattern occurs in every text
    return re.compile(_trie_regex(trie)).search


_END = ""
"""Marks the end of a pattern in `_finder`'s trie (never a character of one)."""


def _trie_regex(node: dict[str, Any]) -> str:
    """The regular expression matching exactly the patterns below a trie node (which is not an end)."""
    branches, ends = [], []
    for char in sorted(node):
        child = node[char]
        if _END in child:
            ends.append(re.escape(char))
            continue
        run = char
        while len(child) == 1 and _END not in child:  # a chain without branches: no recursion along it
            (next_char, child), = child.items()
            run += next_char
        branches.append(re.escape(run) + ("" if _END in child else _trie_regex(child)))
    if ends:
        branches.append(ends[0] if len(ends) == 1 else f"[{''.join(ends)}]")
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


def _normalizer_effects(spec: Any) -> frozenset[str] | None:
    """What a normalizer does to ASCII text ("clean", "lower"), None when it may do anything else.

    On ASCII the two effects commute, so a `Sequence` has the union of its members' effects.
    """
    if spec is None:
        return frozenset()
    if not isinstance(spec, dict):
        return None
    kind = spec.get("type")
    if kind == "BertNormalizer":
        clean, lower = spec.get("clean_text", True), spec.get("lowercase", True)
        if not isinstance(clean, bool) or not isinstance(lower, bool):
            return None
        return frozenset({"clean"} if clean else set()) | frozenset({"lower"} if lower else set())
    if kind == "Lowercase":
        return frozenset({"lower"})
    if kind in _IDENTITY_NORMALIZERS:
        return frozenset()
    if kind == "Sequence" and isinstance(spec.get("normalizers"), list):
        effects: frozenset[str] = frozenset()
        for member in spec["normalizers"]:
            member_effects = _normalizer_effects(member)
            if member_effects is None:
                return None
            effects |= member_effects
        return effects
    return None
