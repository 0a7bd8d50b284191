"""The texts an export tokenizes both through tokenizers and through the native core before trusting the core.

Deterministic (a fixed seed), about 3,000 texts: fixed edge cases (controls, every kind of whitespace, combining
sequences, Hangul, CJK, emoji sequences, full-width and compatibility forms, case mappings that change length);
random strings from each script and from the symbol, mark and supplementary blocks; words built from the model's own
vocabulary pieces, with case changes and accents; each added token alone and in every kind of context; and texts at
and past the truncation length.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

SEED = 16
EDGE_CASES = (
    "", " ", "\t\n\r ", "a", "A", "Hello, World!", "hello world", "HELLO WORLD", "don't stop-believing...",
    "\x00\x01\x1f\x7f\x80\x9f", "a\x00b", "\ufffd", "\u200b\u200c\u200d\u2060\ufeff", "a\u00adb",
    "e\u0301 E\u0301 a\u0308\u0304 o\u0303\u0301", "\u0301\u0301start", "A\u030a\u0323", "Å Å Å", "ﬁ ﬂ ﬃ ß ẞ",
    "İstanbul ıi KELVIN\u212a ΣΑΣ σς", "ǅ ǈ ǋ ǲ", "한국어 텍스트 \u1100\u1161\u11a8 \u1100\u1161", "각",
    "日本語のテキスト、カタカナ。ｶﾀｶﾅ", "中文文本，标点符号！", "ＡＢＣ１２３！？", "①②③ ⅻ ² ³ ½ ㎏ ㍿",
    "𝐀𝐁𝐂 𝔄𝔅 𝟙𝟚", "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 ❤️", "a\u0301\u200d\U0001f600", "क्ष त्र ज्ञ नमस्ते",
    "สวัสดีครับ", "مرحبا بالعالم، كيف حالك؟", "שָׁלוֹם עוֹלָם", "Привет, мир! ЁЖИК", "Ελληνικά ΆΈΉ",
    "\u00a0\u2000\u2003\u3000\u2028\u2029\u0085\u180e\u200a", "line\r\nbreak\rand\nmore", "tab\tseparated\tvalues",
    "x" * 120, "supercalifragilisticexpialidocious" * 4, "a b c d e f g h i j", "1,234.56 -7e8 0x1F",
    "<pad> <unk> [CLS] [SEP] [MASK] <s> </s> <mask>", "https://example.org/path?q=1&r=2#frag", "C++ C# F# .NET",
    "naïve café résumé Zoë Ångström Øresund Łódź Dvořák", "Straße STRASSE straße", "“quotes” ‘single’ — – … •",
)
SCRIPT_RANGES = (
    (0x0020, 0x007E), (0x00A0, 0x024F), (0x0250, 0x036F), (0x0370, 0x052F), (0x0530, 0x058F), (0x0590, 0x06FF),
    (0x0700, 0x08FF), (0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x1CFF), (0x1D00, 0x1FFF), (0x2000, 0x2BFF),
    (0x2C00, 0x2FFF), (0x3000, 0x30FF), (0x3100, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xABFF),
    (0xAC00, 0xD7FF), (0xF900, 0xFAFF), (0xFB00, 0xFDFF), (0xFE00, 0xFFFD), (0x10000, 0x1FFFF), (0x1F300, 0x1FAFF),
    (0x20000, 0x2FFFF), (0xE0000, 0xE01EF),
)
SEPARATORS = (" ", "  ", "\t", "\n", "\r\n", ", ", ". ", "-", "_", "/", "'", "!", "\u00a0", "\u3000", "")
MARKS = ("\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u030c", "\u0323", "\u0331", "\u093c", "\u05b7")


def probe_texts(pieces: Iterable[str], added: Iterable[str], max_length: int | None) -> list[str]:
    """The probe set for a tokenizer with vocabulary `pieces` and added-token contents `added`."""
    rng = random.Random(SEED)
    vocabulary = [piece for piece in pieces if piece]
    rng.shuffle(vocabulary)
    vocabulary = vocabulary[:20_000]
    texts = list(EDGE_CASES)
    texts += [_script_text(rng, low, high) for low, high in SCRIPT_RANGES for _ in range(24)]
    texts += [_vocabulary_text(rng, vocabulary) for _ in range(1500 if vocabulary else 0)]
    for content in added:
        texts += _added_contexts(content)
    texts += _length_texts(rng, vocabulary, max_length)
    return texts


def _script_text(rng: random.Random, low: int, high: int) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        word = "".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 8)))
        parts.append(_noisy(rng, word))
    return rng.choice(SEPARATORS[:6]).join(_without_surrogates(part) for part in parts)


def _vocabulary_text(rng: random.Random, vocabulary: list[str]) -> str:
    words = []
    for _ in range(rng.randint(1, 16)):
        word = "".join(_bare(rng.choice(vocabulary)) for _ in range(rng.randint(1, 3)))
        words.append(_noisy(rng, word))
    text = ""
    for word in words:
        text += word + rng.choice(SEPARATORS)
    return text


def _noisy(rng: random.Random, word: str) -> str:
    """A word, sometimes upper- or title-cased, sometimes with a combining mark after a character."""
    roll = rng.random()
    if roll < 0.15:
        word = word.upper()
    elif roll < 0.3:
        word = word.title()
    if rng.random() < 0.15 and word:
        at = rng.randrange(len(word)) + 1
        word = word[:at] + rng.choice(MARKS) + word[at:]
    return word


def _bare(piece: str) -> str:
    """A vocabulary piece without the markers models put on pieces (WordPiece's ##, Metaspace's ▁)."""
    return piece.removeprefix("##").replace("\u2581", " ")


def _added_contexts(content: str) -> list[str]:
    upper = content.upper()
    return [
        content, f" {content} ", f"x{content}y", f"word {content}word", f"a  \t{content}\n  b", f"{content}{content}",
        f"{content}, {content}.", upper, f"before {upper} after", f"{content[:-1]} {content[1:]}" if content else "",
    ]


LENGTH_CAP = 2048
"""Truncation lengths above this are probed with texts of this many words (a longer text proves nothing more)."""


def _length_texts(rng: random.Random, vocabulary: list[str], max_length: int | None) -> list[str]:
    """Texts around the truncation length: words enough for about max_length - 1 to max_length * 2 tokens."""
    words = [_bare(piece).strip() or "x" for piece in vocabulary[:500]] or ["word"]
    limit = min(max_length or 64, LENGTH_CAP)
    texts = []
    for count in (limit - 1, limit, limit + 1, 2 * limit):
        texts.append(" ".join(rng.choice(words) for _ in range(max(1, count))))
        texts.append(", ".join(rng.choice(words) for _ in range(max(1, count))))
    return texts


def _without_surrogates(text: str) -> str:
    return "".join(char for char in text if not 0xD800 <= ord(char) <= 0xDFFF)
