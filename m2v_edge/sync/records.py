"""Reading and validating the JSON Lines files that `ingest` takes.

Each non-blank line is a JSON object ``{"id": str, "text": str, "metadata": {...}}`` (`metadata` optional).

Policy: **the whole file is refused when any line is bad.** `read_records` validates every line before anything is
embedded or written, and its error lists the offending line numbers (the first `MAX_REPORTED` of them), so a
half-ingested file never has to be untangled. When an id occurs on several lines, the last one wins; the summary
says how many lines were superseded.

Constraints on the fields, all checked here so that a sync can never fail on them later:

- `id`: a non-empty string of at most `MAX_ID_BYTES` UTF-8 bytes with no control characters (Milvus expressions
  cannot carry some of them).
- `text`: a string (may be empty: it embeds to the zero vector).
- `metadata`: a JSON object of at most `MAX_METADATA_BYTES` bytes once serialised (Milvus's JSON field limit).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from m2v_edge.errors import InputRecordsError

MAX_ID_BYTES = 512
MAX_METADATA_BYTES = 65_536
MAX_REPORTED = 20


@dataclass(frozen=True)
class Record:
    """One document to ingest."""

    id: str
    text: str
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass
class RecordSet:
    """A validated records file: iterate it (possibly twice) to get the records that win, in file order."""

    source: str
    lines: int
    """Non-blank lines read."""
    duplicates: int
    """Lines superseded by a later line with the same id."""
    _spool: IO[bytes]
    _winner: dict[str, int]

    def __len__(self) -> int:
        return len(self._winner)

    def __iter__(self) -> Iterator[Record]:
        self._spool.seek(0)
        for number, raw in enumerate(self._spool, start=1):
            if not raw.strip():
                continue
            record = _parse_line(raw, number)
            if self._winner[record.id] == number:
                yield record

    def close(self) -> None:
        """Free the spooled copy of the input."""
        self._spool.close()

    def __enter__(self) -> RecordSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(source: str | Path | IO[bytes]) -> RecordSet:
    """Validate a JSONL file (a path, ``"-"`` for standard input, or a binary stream).

    The input is copied into a spooled temporary file while being checked, so that standard input can be
    iterated again. Raises `InputRecordsError` naming the bad lines; nothing is kept in that case.
    """
    name, stream, owned = _open(source)
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    try:
        try:
            shutil.copyfileobj(stream, spool)
        finally:
            if owned:
                stream.close()
        record_set = _validate(name, spool)
    except BaseException:
        spool.close()
        raise
    return record_set


def _open(source: str | Path | IO[bytes]) -> tuple[str, IO[bytes], bool]:
    if isinstance(source, (str, Path)):
        if str(source) == "-":
            return "<stdin>", sys.stdin.buffer, False
        path = Path(source)
        try:
            return str(path), open(path, "rb"), True
        except FileNotFoundError:
            raise InputRecordsError(f"records file {path} does not exist") from None
        except IsADirectoryError:
            raise InputRecordsError(f"records file {path} is a folder") from None
    if isinstance(source, io.TextIOBase):
        raise TypeError("read_records needs a binary stream")
    return getattr(source, "name", "<stream>"), source, False


def _validate(name: str, spool: IO[bytes]) -> RecordSet:
    spool.seek(0)
    problems: list[str] = []
    bad = 0
    winner: dict[str, int] = {}
    lines = duplicates = 0
    for number, raw in enumerate(spool, start=1):
        if not raw.strip():
            continue
        lines += 1
        try:
            record = _parse_line(raw, number)
        except InputRecordsError as exc:
            bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(str(exc))
            continue
        if record.id in winner:
            duplicates += 1
        winner[record.id] = number
    if bad:
        more = f"; and {bad - len(problems)} more" if bad > len(problems) else ""
        raise InputRecordsError(
            f"{name}: {bad} bad line(s) of {lines}, nothing ingested: " + "; ".join(problems) + more
        )
    return RecordSet(source=name, lines=lines, duplicates=duplicates, _spool=spool, _winner=winner)


def _parse_line(raw: bytes, number: int) -> Record:
    """Parse and check one line; errors name the line number."""
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise InputRecordsError(f"line {number}: not UTF-8") from None
    except ValueError as exc:
        raise InputRecordsError(f"line {number}: invalid JSON ({exc.args[0].split(':')[0]})") from None
    if not isinstance(data, dict):
        raise InputRecordsError(f"line {number}: expected a JSON object, got {type(data).__name__}")
    if "id" not in data:
        raise InputRecordsError(f"line {number}: missing 'id'")
    if "text" not in data:
        raise InputRecordsError(f"line {number}: missing 'text'")
    doc_id, text, metadata = data["id"], data["text"], data.get("metadata", {})
    if not isinstance(doc_id, str) or not doc_id:
        raise InputRecordsError(f"line {number}: 'id' must be a non-empty string, got {json.dumps(doc_id)[:40]}")
    if len(doc_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InputRecordsError(f"line {number}: 'id' is longer than {MAX_ID_BYTES} bytes")
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise InputRecordsError(f"line {number}: 'id' contains control characters")
    if not isinstance(text, str):
        raise InputRecordsError(f"line {number}: 'text' must be a string, got {type(text).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InputRecordsError(f"line {number}: 'metadata' must be a JSON object, got {type(metadata).__name__}")
    try:
        doc_id.encode("utf-8")
        text.encode("utf-8")
        metadata_size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise InputRecordsError(f"line {number}: a field holds an unpaired surrogate escape") from None
    if metadata_size > MAX_METADATA_BYTES:
        raise InputRecordsError(f"line {number}: 'metadata' is larger than {MAX_METADATA_BYTES} bytes")
    return Record(doc_id, text, metadata)
