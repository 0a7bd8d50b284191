"""The retrieval corpus: one JSON object a line, `query` and `document`; line i's query matches its document."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Corpus:
    """Queries and documents of a JSONL corpus, aligned by line."""

    path: Path
    queries: list[str]
    documents: list[str]
    sha256: str
    """Digest of the whole file, so a report names exactly the data it was measured on."""

    def __len__(self) -> int:
        return len(self.queries)

    def stats(self) -> dict[str, float | int]:
        """Sizes worth reporting next to throughput figures."""
        return {
            "texts": len(self),
            "query_chars_mean": sum(map(len, self.queries)) / max(1, len(self)),
            "document_chars_mean": sum(map(len, self.documents)) / max(1, len(self)),
            "document_chars_max": max(map(len, self.documents), default=0),
        }


def _text(row: dict[str, object], name: str, where: str) -> str:
    value = row.get(name)
    if isinstance(value, str):
        return value
    raise ValueError(f"{where}: each line needs string fields 'query' and 'document'")


def load_corpus(path: Path, limit: int | None = None) -> Corpus:
    """Read the first `limit` lines (all when None) of a `{"query", "document"}` JSONL file."""
    raw = path.read_bytes()
    queries: list[str] = []
    documents: list[str] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if limit is not None and len(queries) >= limit:
            break
        if not line.strip():
            continue
        row = json.loads(line)
        queries.append(_text(row, "query", f"{path}:{number}"))
        documents.append(_text(row, "document", f"{path}:{number}"))
    if not queries:
        raise ValueError(f"{path} holds no texts")
    return Corpus(path=path, queries=queries, documents=documents, sha256=hashlib.sha256(raw).hexdigest())
