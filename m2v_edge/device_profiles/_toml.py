"""Reading TOML (stdlib `tomllib`, or `tomli` on Python 3.10) and writing the simple TOML profiles use.

Profiles only need strings, integers, booleans, lists of strings and one level of tables, so the writer
is a few lines rather than a dependency.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib as _toml_reader
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as _toml_reader

TOMLDecodeError = _toml_reader.TOMLDecodeError


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text; raises `TOMLDecodeError` on syntax errors."""
    return _toml_reader.loads(text)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a profile TOML value")


def _string(value: str) -> str:
    """A TOML basic string with the escapes TOML requires."""
    out = ['"']
    for char in value:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def dumps(data: Mapping[str, Any], *, header: str = "", comments: Mapping[str, str] | None = None) -> str:
    """Write a mapping of scalars and one level of tables as TOML.

    `None` values are left out (TOML has no null). `header` lines are written as leading comments;
    `comments` maps "table.key" (or "key") to an end-of-line comment.
    """
    comments = comments or {}
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    if lines:
        lines.append("")
    tables = {key: value for key, value in data.items() if isinstance(value, Mapping)}
    for key, value in data.items():
        if value is None or key in tables:
            continue
        lines.append(_line(key, value, comments.get(key)))
    for table, values in tables.items():
        if lines and lines[-1] != "":
            lines.append("")
        lines.append(f"[{table}]")
        for key, value in values.items():
            if value is None:
                continue
            lines.append(_line(key, value, comments.get(f"{table}.{key}")))
    return "\n".join(lines) + "\n"


def _line(key: str, value: Any, comment: str | None) -> str:
    line = f"{key} = {_scalar(value)}"
    return f"{line}  # {comment}" if comment else line
