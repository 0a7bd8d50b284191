"""The `Profile` data model: what a device profile says about sessions and encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ExecutionMode = Literal["sequential", "parallel"]
OptimizationLevel = Literal["disable", "basic", "extended", "all"]
ProfileSource = Literal["builtin", "user", "file", "default"]

EXECUTION_MODES: tuple[str, ...] = ("sequential", "parallel")
OPTIMIZATION_LEVELS: tuple[str, ...] = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class SessionSettings:
    """onnxruntime session settings (applied by `m2v_edge.runtime.session`)."""

    intra_op_threads: int = 1
    inter_op_threads: int = 1
    execution_mode: ExecutionMode = "sequential"
    graph_optimization_level: OptimizationLevel = "all"
    cpu_mem_arena: bool = True
    mem_pattern: bool = True
    allow_spinning: bool = False


@dataclass(frozen=True)
class EncodingSettings:
    """How the embedder batches and which variant it prefers."""

    variants: tuple[str, ...] = ("int8", "fp16", "fp32")
    """Variant preference order: the first one the bundle has is used."""
    token_budget: int = 4096
    """Upper bound on padded tokens (batch rows x longest row) per onnxruntime call."""
    ascii_fast_path: bool = True
    """Whether ASCII texts take the exact fast path where the tokenizer allows it (same ids as tokenizers; several
    times faster per core). Off saves its memory: a copy of the vocabulary (3.3 MiB for potion's 29,528 tokens) and
    a cache of word splits (about 140 bytes per distinct out-of-vocabulary word, at most 65,536 words)."""
    fallback_tokenizer_mib: int = 4096
    """The most memory tokenizers may be expected to take (estimated from the size of the bundle's tokenizer.json)
    when a bundle cannot use the native core: a bigger one is refused with the way out instead of being loaded into
    memory the device does not have (a 500,353-piece Unigram takes about 515 MiB in tokenizers, 25 x its file)."""


@dataclass(frozen=True)
class MatchRules:
    """When detection picks a profile; an empty rule matches anything.

    Every non-empty rule must match for the profile to match; the more (and the more specific) rules
    match, the higher the profile scores (see `m2v_edge.device_profiles.detect`).
    """

    device_tree_model: tuple[str, ...] = ()
    """Substrings of /proc/device-tree/model, any of which matches."""
    architectures: tuple[str, ...] = ()
    """Machine architectures (`platform.machine()` values), any of which matches."""
    cpu_implementer: tuple[str, ...] = ()
    """`CPU implementer` values of /proc/cpuinfo (ARM), e.g. "0x41" for Arm Ltd."""
    cpu_part: tuple[str, ...] = ()
    """`CPU part` values of /proc/cpuinfo (ARM), e.g. "0xd03" for Cortex-A53; any of which matches."""
    min_memory_mb: int | None = None
    """Least usable memory (MemTotal, or the cgroup limit when lower), in MiB."""
    max_memory_mb: int | None = None
    """Most usable memory, in MiB."""
    cpu_model: tuple[str, ...] = ()
    """Substrings of the cpuinfo `model name` (x86) or `Model` line, any of which matches."""

    @property
    def is_empty(self) -> bool:
        """True when the rules match every machine."""
        return not (
            self.device_tree_model
            or self.architectures
            or self.cpu_implementer
            or self.cpu_part
            or self.cpu_model
            or self.min_memory_mb is not None
            or self.max_memory_mb is not None
        )


@dataclass(frozen=True)
class Profile:
    """A named set of session and encoding settings for a kind of device."""

    name: str
    description: str = ""
    match: MatchRules = field(default_factory=MatchRules)
    session: SessionSettings = field(default_factory=SessionSettings)
    encoding: EncodingSettings = field(default_factory=EncodingSettings)
    path: Path | None = None
    """The TOML file the profile was read from, None for built-in defaults."""
    source: ProfileSource = "default"
    """Where it came from: shipped with m2v-edge, the user's profile folder, an explicit file, or code."""
