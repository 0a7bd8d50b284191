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
- `metadata`: a JSON object of at most `MAX_METADATA_BYTES` bytes once serialised (Milvus's JSON field limit),
  without NaN or Infinity (Python's json reads and writes them, but they are not JSON).

`check_record` applies the same checks to records that do not come from a file (`ingest`, `Outbox.put`).
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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
    problems = _Problems()
    winner: dict[str, int] = {}
    lines = duplicates = 0
    for number, raw in enumerate(spool, start=1):
        if not raw.strip():
            continue
        lines += 1
        try:
            record = _parse_line(raw, number)
        except InputRecordsError as exc:
            problems.add(exc)
            continue
        if record.id in winner:
            duplicates += 1
        winner[record.id] = number
    problems.raise_if_any(name, lines, "line(s)")
    return RecordSet(source=name, lines=lines, duplicates=duplicates, _spool=spool, _winner=winner)


def check_records(items: Sequence[Record | Mapping[str, Any]]) -> list[Record]:
    """Check in-memory records (`Record`s or ``{"id", "text", "metadata"?}`` mappings) as the file reader checks
    lines; raise one `InputRecordsError` listing the bad ones (``record N``, counted from 1)."""
    problems = _Problems()
    checked: list[Record] = []
    for number, item in enumerate(items, start=1):
        try:
            checked.append(to_record(item, f"record {number}"))
        except InputRecordsError as exc:
            problems.add(exc)
    problems.raise_if_any("records", len(items), "record(s)")
    return checked


def to_record(item: Record | Mapping[str, Any], where: str) -> Record:
    """One in-memory record checked (see `check_record`)."""
    if isinstance(item, Record):
        return check_record(item.id, item.text, item.metadata, where)
    if isinstance(item, Mapping):
        return parse_record(dict(item), where)
    raise InputRecordsError(f"{where}: expected a Record or a mapping, got {type(item).__name__}")


class _Problems:
    """The bad items of one input: counted, the first `MAX_REPORTED` kept, raised as one error."""

    def __init__(self) -> None:
        self.count = 0
        self.messages: list[str] = []

    def add(self, exc: InputRecordsError) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED:
            self.messages.append(str(exc))

    def raise_if_any(self, source: str, total: int, unit: str) -> None:
        if not self.count:
            return
        more = f"; and {self.count - len(self.messages)} more" if self.count > len(self.messages) else ""
        raise InputRecordsError(
            f"{source}: {self.count} bad {unit} of {total}, nothing ingested: " + "; ".join(self.messages) + more
        )


def _parse_line(raw: bytes, number: int) -> Record:
    """Parse and check one line; errors name the line number."""
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise InputRecordsError(f"line {number}: not UTF-8") from None
    except json.JSONDecodeError as exc:
        at = "" if exc.msg.endswith(" at") else "at "  # "Unterminated string starting at", "Expecting value"
        place = f"column {exc.pos + 1}" if exc.pos < len(exc.doc.rstrip()) else "the end of the line"
        raise InputRecordsError(f"line {number}: invalid JSON: {exc.msg} {at}{place}") from None
    return parse_record(data, f"line {number}")


def parse_record(data: object, where: str) -> Record:
    """A decoded JSON value (``{"id", "text", "metadata"?}``) checked and turned into a `Record`.

    :param where: how the errors name the record, e.g. ``"line 3"`` or ``"record 3"``.
    """
    if not isinstance(data, dict):
        raise InputRecordsError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if "id" not in data:
        raise InputRecordsError(f"{where}: missing 'id'")
    if "text" not in data:
        raise InputRecordsError(f"{where}: missing 'text'")
    return check_record(data["id"], data["text"], data.get("metadata"), where)


def check_record(doc_id: object, text: object, metadata: object, where: str) -> Record:
    """Check one record's fields against the constraints above; the `Record`, or `InputRecordsError` naming `where`.

    The file reader, `ingest` and `Outbox.put` all apply this, so that nothing reaches an outbox that a sync
    would fail on later. A missing (None) `metadata` becomes ``{}``.
    """
    doc_id = check_id(doc_id, where)
    if not isinstance(text, str):
        raise InputRecordsError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InputRecordsError(f"{where}: 'metadata' must be a JSON object, got {type(metadata).__name__}")
    try:
        text.encode("utf-8")
        metadata_size = len(json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise InputRecordsError(f"{where}: a field holds an unpaired surrogate escape") from None
    except (ValueError, TypeError) as exc:  # NaN or Infinity, or values that are not JSON at all
        raise InputRecordsError(f"{where}: 'metadata' cannot be written as strict JSON: {exc}") from None
    if metadata_size > MAX_METADATA_BYTES:
        raise InputRecordsError(f"{where}: 'metadata' is larger than {MAX_METADATA_BYTES} bytes")
    return Record(doc_id, text, metadata)


def check_id(doc_id: object, where: str) -> str:
    """`doc_id` when it is a valid document id (see above); `InputRecordsError` naming `where` otherwise."""
    if not isinstance(doc_id, str) or not doc_id:
        shown = json.dumps(doc_id, default=repr)[:40]
        raise InputRecordsError(f"{where}: 'id' must be a non-empty string, got {shown}")
    if len(doc_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InputRecordsError(f"{where}: 'id' is longer than {MAX_ID_BYTES} bytes")
    if any(unicodedata.category(ch) == "Cc" for ch in doc_id):
        raise InputRecordsError(f"{where}: 'id' contains control characters")
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError:
        raise InputRecordsError(f"{where}: 'id' holds an unpaired surrogate escape") from None
    return doc_id
