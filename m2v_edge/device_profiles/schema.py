"""Validation of profile TOML data into `Profile` objects, and the reverse for writing.

Every refusal is a `ProfileError` naming the file, the key and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from m2v_edge.bundle import VARIANTS
from m2v_edge.device_profiles._toml import TOMLDecodeError, loads
from m2v_edge.device_profiles.profile import (
    EXECUTION_MODES,
    OPTIMIZATION_LEVELS,
    EncodingSettings,
    MatchRules,
    Profile,
    ProfileSource,
    SessionSettings,
)
from m2v_edge.errors import ProfileError

MAX_THREADS = 1024
MAX_TOKEN_BUDGET = 1 << 24
"""16M padded tokens: with dim 256 that is a 16 GiB float32 intermediate, beyond any edge device."""
MAX_MEMORY_MB = 1 << 24

ARCHITECTURE_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv8l": "armv7l",
    "armv7l": "armv7l",
    "armv7": "armv7l",
    "armv6l": "armv6l",
    "i386": "i686",
    "i686": "i686",
    "x86": "i686",
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
"""`platform.machine()` spellings mapped to one canonical name each."""
ARCHITECTURES = tuple(sorted(set(ARCHITECTURE_ALIASES.values())))

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX_PATTERN = re.compile(r"^0x[0-9a-f]+$")


def normalize_architecture(machine: str) -> str:
    """The canonical name of a machine architecture (unknown names are returned lower-cased)."""
    lowered = machine.strip().lower()
    return ARCHITECTURE_ALIASES.get(lowered, lowered)


class _Reader:
    """Pulls typed values out of one table of a profile file, remembering which keys were used."""

    def __init__(self, where: str, table: str, data: Any, allowed: tuple[str, ...]) -> None:
        self.where = where
        self.table = table
        if not isinstance(data, Mapping):
            raise ProfileError(f"{where}: '{table}' must be a table ([{table}]), got {_kind(data)}")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ProfileError(
                f"{where}: unknown key '{self.key(unknown[0])}'; allowed keys in "
                f"{'the top level' if not table else '[' + table + ']'}: {', '.join(allowed)}"
            )
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.table}.{name}" if self.table else name

    def fail(self, name: str, expected: str, value: Any) -> ProfileError:
        return ProfileError(f"{self.where}: '{self.key(name)}' must be {expected}, got {value!r} ({_kind(value)})")

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.data.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"an integer from {low} to {high}", value)
        if not low <= value <= high:
            raise self.fail(name, f"an integer from {low} to {high}", value)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def string(self, name: str, default: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.data.get(name, default)
        if not isinstance(value, str):
            expected = "a string" if choices is None else "one of " + ", ".join(f'"{c}"' for c in choices)
            raise self.fail(name, expected, value)
        if choices is not None and value not in choices:
            raise self.fail(name, "one of " + ", ".join(f'"{c}"' for c in choices), value)
        return value

    def strings(
        self, name: str, default: tuple[str, ...], check: Callable[[str], str | None] | None = None, what: str = ""
    ) -> tuple[str, ...]:
        """A list of strings; `check` returns the normalised item or None when the item is not allowed."""
        value = self.data.get(name, default)
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise self.fail(name, f"a list of strings{what}", value)
        items = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(name, f"a list of non-empty strings{what}", value)
            normalised = check(item) if check else item
            if normalised is None:
                raise ProfileError(f"{self.where}: '{self.key(name)}' has {item!r}; allowed{what}")
            items.append(normalised)
        return tuple(items)


_TOP_KEYS = ("name", "description", "match", "session", "encoding")
_MATCH_KEYS = (
    "device_tree_model",
    "architectures",
    "cpu_implementer",
    "cpu_part",
    "cpu_model",
    "min_memory_mb",
    "max_memory_mb",
)
_SESSION_KEYS = (
    "intra_op_threads",
    "inter_op_threads",
    "execution_mode",
    "graph_optimization_level",
    "cpu_mem_arena",
    "mem_pattern",
    "allow_spinning",
)
_ENCODING_KEYS = ("variants", "token_budget", "ascii_fast_path", "fallback_tokenizer_mib")


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _architecture(item: str) -> str | None:
    canonical = normalize_architecture(item)
    return canonical if canonical in ARCHITECTURES else None


def _hex(item: str) -> str | None:
    lowered = item.strip().lower()
    return lowered if _HEX_PATTERN.match(lowered) else None


def _variant(item: str) -> str | None:
    return item if item in VARIANTS else None


def profile_from_data(
    data: Mapping[str, Any], *, name: str, where: str, path: Path | None = None, source: ProfileSource = "file"
) -> Profile:
    """Validate parsed TOML data; `name` is used when the file has no `name` key."""
    top = _Reader(where, "", data, _TOP_KEYS)
    name = top.string("name", name)
    if not NAME_PATTERN.match(name):
        raise ProfileError(
            f"{where}: 'name' must be 1-64 characters of a-z, 0-9, '.', '_' or '-' starting with a letter "
            f"or digit, got {name!r}"
        )
    description = top.string("description", "")

    rules = _Reader(where, "match", data.get("match", {}), _MATCH_KEYS)
    min_mb = rules.integer("min_memory_mb", None, 1, MAX_MEMORY_MB)
    max_mb = rules.integer("max_memory_mb", None, 1, MAX_MEMORY_MB)
    if min_mb is not None and max_mb is not None and min_mb > max_mb:
        raise ProfileError(
            f"{where}: 'match.min_memory_mb' ({min_mb}) must not exceed 'match.max_memory_mb' ({max_mb})"
        )
    match = MatchRules(
        device_tree_model=rules.strings("device_tree_model", ()),
        architectures=rules.strings("architectures", (), _architecture, ": " + ", ".join(ARCHITECTURES)),
        cpu_implementer=rules.strings("cpu_implementer", (), _hex, ': hexadecimal like "0x41"'),
        cpu_part=rules.strings("cpu_part", (), _hex, ': hexadecimal like "0xd03"'),
        cpu_model=rules.strings("cpu_model", ()),
        min_memory_mb=min_mb,
        max_memory_mb=max_mb,
    )

    defaults = SessionSettings()
    sess = _Reader(where, "session", data.get("session", {}), _SESSION_KEYS)
    session = SessionSettings(
        intra_op_threads=sess.integer("intra_op_threads", defaults.intra_op_threads, 1, MAX_THREADS),  # type: ignore[arg-type]
        inter_op_threads=sess.integer("inter_op_threads", defaults.inter_op_threads, 1, MAX_THREADS),  # type: ignore[arg-type]
        execution_mode=sess.string("execution_mode", defaults.execution_mode, EXECUTION_MODES),  # type: ignore[arg-type]
        graph_optimization_level=sess.string(  # type: ignore[arg-type]
            "graph_optimization_level", defaults.graph_optimization_level, OPTIMIZATION_LEVELS
        ),
        cpu_mem_arena=sess.boolean("cpu_mem_arena", defaults.cpu_mem_arena),
        mem_pattern=sess.boolean("mem_pattern", defaults.mem_pattern),
        allow_spinning=sess.boolean("allow_spinning", defaults.allow_spinning),
    )

    enc_defaults = EncodingSettings()
    enc = _Reader(where, "encoding", data.get("encoding", {}), _ENCODING_KEYS)
    variants = enc.strings("variants", enc_defaults.variants, _variant, ": " + ", ".join(VARIANTS))
    if not variants:
        raise ProfileError(f"{where}: 'encoding.variants' must name at least one of {', '.join(VARIANTS)}")
    if len(set(variants)) != len(variants):
        raise ProfileError(f"{where}: 'encoding.variants' lists a variant twice: {list(variants)}")
    encoding = EncodingSettings(
        variants=variants,
        token_budget=enc.integer("token_budget", enc_defaults.token_budget, 1, MAX_TOKEN_BUDGET),  # type: ignore[arg-type]
        ascii_fast_path=enc.boolean("ascii_fast_path", enc_defaults.ascii_fast_path),
        fallback_tokenizer_mib=enc.integer(  # type: ignore[arg-type]
            "fallback_tokenizer_mib", enc_defaults.fallback_tokenizer_mib, 1, MAX_MEMORY_MB
        ),
    )
    return Profile(
        name=name, description=description, match=match, session=session, encoding=encoding, path=path, source=source
    )


def parse_profile(
    text: str, *, name: str, where: str, path: Path | None = None, source: ProfileSource = "file"
) -> Profile:
    """Parse and validate profile TOML text."""
    try:
        data = loads(text)
    except TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML: {exc}") from None
    return profile_from_data(data, name=name, where=where, path=path, source=source)


def profile_to_data(profile: Profile) -> dict[str, Any]:
    """The TOML-shaped mapping of a profile (empty match rules and unset bounds left out)."""
    rules = profile.match
    match = {
        "device_tree_model": list(rules.device_tree_model) or None,
        "architectures": list(rules.architectures) or None,
        "cpu_implementer": list(rules.cpu_implementer) or None,
        "cpu_part": list(rules.cpu_part) or None,
        "cpu_model": list(rules.cpu_model) or None,
        "min_memory_mb": rules.min_memory_mb,
        "max_memory_mb": rules.max_memory_mb,
    }
    s = profile.session
    return {
        "name": profile.name,
        "description": profile.description,
        "match": {key: value for key, value in match.items() if value is not None},
        "session": {
            "intra_op_threads": s.intra_op_threads,
            "inter_op_threads": s.inter_op_threads,
            "execution_mode": s.execution_mode,
            "graph_optimization_level": s.graph_optimization_level,
            "cpu_mem_arena": s.cpu_mem_arena,
            "mem_pattern": s.mem_pattern,
            "allow_spinning": s.allow_spinning,
        },
        "encoding": {
            "variants": list(profile.encoding.variants),
            "token_budget": profile.encoding.token_budget,
            "ascii_fast_path": profile.encoding.ascii_fast_path,
            "fallback_tokenizer_mib": profile.encoding.fallback_tokenizer_mib,
        },
    }
