"""What `m2v-edge encode` reads: plain text, one text per line, or JSON Lines objects holding the text in a field.

JSON Lines is read when `--input-format jsonl` says so, when the file name ends in `.jsonl`, or when the first line is
a JSON object with the text field (so piped JSONL is never embedded as raw JSON). A JSONL line's `id` and `metadata`
are carried to the output. Bad lines do not stop the reading: every one is collected and `check` reports them
together; the texts after the first bad line are not yielded (their vectors could not be used anyway).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

MAX_REPORTED = 20
"""Bad lines described in the error; the others are counted."""
CARRIED = ("id", "metadata")
"""The fields of a JSONL line that the output keeps next to the vector."""


@dataclass(frozen=True)
class Row:
    """One text to encode, and the fields its JSONL line carries to the output (None for plain text)."""

    text: str
    carried: dict[str, Any] | None


class TextInput:
    """The rows of `--input` (a path, or `-` for stdin), read lazily, line by line.

    :param input_format: "text", "jsonl", or None to decide from the name and the first line.
    :param text_field: the JSONL field that holds the text.
    """

    def __init__(self, source: str, input_format: str | None, text_field: str) -> None:
        self.source = source
        self.text_field = text_field
        self._handle = sys.stdin.buffer if source == "-" else _open(source)
        first = self._handle.readline()
        self._lines = chain([first], self._handle) if first else iter(())
        self.jsonl = input_format == "jsonl" or (
            input_format is None and (source.endswith(".jsonl") or self._holds_text_field(first))
        )
        self.problems: list[str] = []
        self.bad_lines = 0
        self.lines = 0

    def __iter__(self) -> Iterator[Row]:
        for number, raw in enumerate(self._lines, 1):
            self.lines = number
            try:
                row = self._row(raw)
            except ValueError as exc:
                self.bad_lines += 1
                if len(self.problems) < MAX_REPORTED:
                    self.problems.append(f"line {number}: {exc}")
                continue
            if row is not None and not self.bad_lines:
                yield row

    def check(self) -> None:
        """Raise ValueError listing the bad lines, if there were any."""
        if not self.bad_lines:
            return
        more = f"; and {self.bad_lines - len(self.problems)} more" if self.bad_lines > len(self.problems) else ""
        lines = "1 bad line" if self.bad_lines == 1 else f"{self.bad_lines} bad lines"
        raise ValueError(f"--input {self.source}: {lines} of {self.lines}: {'; '.join(self.problems)}{more}")

    def close(self) -> None:
        """Close the input file (stdin is left open)."""
        if self._handle is not sys.stdin.buffer:
            self._handle.close()

    def __enter__(self) -> TextInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(self, raw: bytes) -> Row | None:
        """The row of one line; None for a blank JSONL line (skipped)."""
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 ({exc.reason})") from None
        if not self.jsonl:
            return Row(line, None)
        if not line.strip():
            return None
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"invalid JSON ({str(exc).split(':')[0]})") from None
        if not isinstance(data, dict) or self.text_field not in data:
            raise ValueError(f"expected a JSON object with a {self.text_field!r} field")
        text = data[self.text_field]
        if not isinstance(text, str):
            raise ValueError(f"{self.text_field!r} is {type(text).__name__}, not a string")
        return Row(text, {key: data[key] for key in CARRIED if key in data})

    def _holds_text_field(self, first: bytes) -> bool:
        try:
            data = json.loads(first)
        except ValueError:
            return False
        return isinstance(data, dict) and isinstance(data.get(self.text_field), str)


def _open(source: str) -> IO[bytes]:
    """The input file, opened now so that a wrong path is reported before the bundle is loaded."""
    try:
        return open(source, "rb")  # noqa: SIM115 - closed by TextInput.close
    except FileNotFoundError:
        raise ValueError(f"--input {source}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"--input {source} is a folder; give a text or .jsonl file") from None
    except OSError as exc:
        raise ValueError(f"--input {source}: {exc.strerror or exc}") from None
