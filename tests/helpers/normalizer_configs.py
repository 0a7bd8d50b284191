"""Normalizers by name for the native core's normalizer and id tests: BertNormalizer in each of its 24
configurations, and the ones that work a character (or a starter and its marks) at a time."""

from __future__ import annotations

from collections.abc import Callable

from tokenizers import normalizers

BERT_NORMALIZERS: dict[str, Callable[[], normalizers.Normalizer]] = {
    f"bert-clean{c:d}-cjk{h:d}-strip{s}-lower{lo:d}": lambda c=c, h=h, s=s, lo=lo: normalizers.BertNormalizer(
        clean_text=c, handle_chinese_chars=h, strip_accents=s, lowercase=lo)
    for c in (True, False) for h in (True, False) for s in (None, True, False) for lo in (True, False)
}

LOCAL_NORMALIZERS: dict[str, Callable[[], normalizers.Normalizer]] = {
    **BERT_NORMALIZERS,
    "lowercase": normalizers.Lowercase,
    "strip-accents": normalizers.StripAccents,
    "nfd": normalizers.NFD,
    "nfkd": normalizers.NFKD,
    "nfc": normalizers.NFC,
    "nfkc": normalizers.NFKC,
    "nfkc-lowercase": lambda: normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
    "nfd-stripaccents-nfc": lambda: normalizers.Sequence(
        [normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC()]),
}
"""Every normalizer that never looks across an ASCII whitespace character (no Strip, Prepend, Replace or
Precompiled)."""
