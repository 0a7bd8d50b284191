"""The export's decision about the native core: compile tokenizer.json into `tokenizer.m2v`, check the core against
tokenizers on the probe texts, and record the outcome in the manifest (`CoreTokenizer`).

A bundle never gives ids that tokenizers would not: the file is kept only when the core reproduces the pipeline
(`tokenizer_file.compile_tokenizer` refuses the parts it does not) and gives the same ids as tokenizers on every
probe text, with the bundle's truncation. Otherwise the file is not written, the reason is recorded and logged, and
the runtime tokenizes through tokenizers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from m2v_edge.bundle import CORE_TOKENIZER_FILE, CoreTokenizer, FileEntry
from m2v_edge.export.probe_texts import probe_texts
from m2v_edge.export.tokenizer_file import Unsupported, compile_tokenizer
from m2v_edge.runtime import native

logger = logging.getLogger(__name__)


def write_core_tokenizer(
    folder: Path, tokenizer: Tokenizer, spec: dict[str, Any], *, id_limit: int, max_length: int | None
) -> CoreTokenizer:
    """Write `tokenizer.m2v` into the bundle `folder` when the core reproduces the bundle's tokenizer, and say what
    was decided.

    :param tokenizer: the bundle's tokenizer, loaded (padding and truncation off; the check sets and clears
        truncation).
    :param spec: its tokenizer.json, parsed.
    :param id_limit: the bundle's table rows.
    :param max_length: the bundle's truncation, applied on both sides of the check.
    """
    version = native.core_version() or 0
    if not native.available():
        return _refused(native.unavailable_reason(), version)
    try:
        data = compile_tokenizer(spec, tokenizer, id_limit)
    except Unsupported as exc:
        return _refused(f"the native core does not reproduce {exc}", version)
    path = folder / CORE_TOKENIZER_FILE
    path.write_bytes(data)
    added = [token.content for token in tokenizer.get_added_tokens_decoder().values()]
    texts = probe_texts(tokenizer.get_vocab(with_added_tokens=False), added, max_length)
    differs = _first_difference(path, tokenizer, texts, max_length)
    if differs is not None:
        path.unlink()
        return _refused(differs, version)
    logger.info("the native core reproduces the tokenizer on %d probe texts; wrote %s", len(texts), path.name)
    return CoreTokenizer(file=FileEntry.of(folder, CORE_TOKENIZER_FILE), reason="", core_version=version,
                         probe_texts=len(texts))


def _first_difference(path: Path, tokenizer: Tokenizer, texts: list[str], max_length: int | None) -> str | None:
    """None when the core and tokenizers give the same ids for every text, else a sentence naming the first text."""
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
    try:
        expected = [encoding.ids for encoding in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    finally:
        tokenizer.no_truncation()
    core = native.NativeTokenizer(path, max_length)
    tokens = core.tokenize(texts)
    wrong = [
        index for index, ids in enumerate(expected)
        if tokens.ids[tokens.offsets[index] : tokens.offsets[index] + tokens.lengths[index]].tolist() != ids
    ]
    if not wrong:
        return None
    return (
        f"the native core's ids differ from tokenizers' on {len(wrong)} of {len(texts)} probe texts "
        f"(the first: {texts[wrong[0]][:60]!r})"
    )


def _refused(reason: str, version: int) -> CoreTokenizer:
    logger.warning("this bundle will tokenize through tokenizers, not the native core: %s", reason)
    return CoreTokenizer(file=None, reason=reason, core_version=version, probe_texts=0)
