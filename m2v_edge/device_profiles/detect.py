"""Choosing a profile for this machine, and fitting it to the machine's limits.

Precedence (`resolve_profile`): explicit argument > `M2V_EDGE_PROFILE` > a matching user profile >
the best-matching built-in profile > `generic`. Whatever is chosen is then capped to the machine:
threads to the CPUs listed, the cpuset and the cgroup CPU quota (floor, at least 1); no thread spinning
under a CPU quota; a token budget that fits the usable memory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from m2v_edge.device_profiles.facts import MachineFacts, read_facts
from m2v_edge.device_profiles.profile import Profile
from m2v_edge.device_profiles.store import (
    FALLBACK_PROFILE,
    builtin_profiles,
    load_profile,
    user_profile_dir,
    user_profiles,
)
from m2v_edge.device_profiles.sysfiles import SourceRead
from m2v_edge.errors import ProfileError

logger = logging.getLogger(__name__)

Via = Literal["argument", "environment", "user profile", "detection", "fallback"]

ENV_VAR = "M2V_EDGE_PROFILE"
AUTO = "auto"

SCORES = {
    "device_tree_model": 100,
    "cpu_model": 40,
    "cpu_part": 20,
    "cpu_implementer": 5,
    "memory": 3,
    "architectures": 1,
}
"""Weight of each matching rule: a board named by its device tree beats a CPU type, which beats a memory
range, which beats a bare architecture. A profile without rules (generic) scores 0 and matches anything."""

TOKENS_PER_MIB = 8
"""Token budget cap per MiB of usable memory. The pooling graph's biggest intermediates are the gathered
[rows, width, dim] table rows and their float32 copy: about 5 x dim bytes per padded token (1.25 KiB at
dim 256, 5 KiB at dim 1024). 8 tokens per MiB keeps that below 4 % of memory even at dim 1024."""
MIN_TOKEN_BUDGET = 512
FAST_PATH_MIN_MIB = 768
"""With this much usable memory or less (the low-memory profile's range) the ASCII fast path is turned off: its
vocabulary copy and word-split cache (6 MiB measured on the 8,000 Debian documents) are better left to the
application; tokenizers gives the same ids."""
FALLBACK_SHARE = 4
"""Without the native core, tokenizers may take at most this fraction of the usable memory (fallback_tokenizer_mib)."""


@dataclass(frozen=True)
class Candidate:
    """How one profile fared against the machine's facts."""

    name: str
    source: str
    matched: bool
    score: int
    reasons: tuple[str, ...]
    """Which rules matched, or the first one that did not."""


@dataclass(frozen=True)
class Detection:
    """The outcome of detection, with everything `m2v-edge profile detect` prints."""

    facts: MachineFacts
    candidates: tuple[Candidate, ...]
    chosen: Profile
    """The profile as its file defines it."""
    profile: Profile
    """`chosen` fitted to the machine's limits: what the runtime uses."""
    adjustments: tuple[str, ...]
    reason: str
    user_dir: Path

    @property
    def reads(self) -> tuple[SourceRead, ...]:
        return self.facts.reads

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.facts.fallbacks


@dataclass(frozen=True)
class Resolution:
    """Which step of the precedence chain gave the profile."""

    via: Via
    profile: Profile
    detection: Detection | None
    adjustments: tuple[str, ...] = ()


def evaluate(profile: Profile, facts: MachineFacts) -> Candidate:
    """Check a profile's match rules against the facts.

    A board rule needs a known board and a memory rule a known memory size; CPU rules are skipped (neither
    matched nor failed) when /proc/cpuinfo is unknown, so a board named by its device tree is still
    recognised. A profile with rules matches only when at least one of them matched and none failed.
    """
    rules = profile.match
    score = 0
    reasons: list[str] = []

    def miss(reason: str) -> Candidate:
        return Candidate(profile.name, profile.source, False, 0, (reason,))

    if rules.device_tree_model:
        board = facts.board
        hit = next((text for text in rules.device_tree_model if board and text.casefold() in board.casefold()), None)
        if hit is None:
            return miss(f"board {repr(board) if board else 'unknown'} contains none of {list(rules.device_tree_model)}")
        score += SCORES["device_tree_model"]
        reasons.append(f"board contains {hit!r}")
    if rules.architectures:
        if facts.machine not in rules.architectures:
            return miss(f"architecture {facts.machine} not in {list(rules.architectures)}")
        score += SCORES["architectures"]
        reasons.append(f"architecture {facts.machine}")
    cpu = facts.cpu
    if (rules.cpu_implementer or rules.cpu_part or rules.cpu_model) and cpu is None:
        reasons.append("CPU rules skipped: /proc/cpuinfo unknown")
    elif cpu is not None:
        if rules.cpu_implementer:
            hits = [value for value in cpu.implementers if value in rules.cpu_implementer]
            if not hits:
                return miss(f"CPU implementer {list(cpu.implementers)} not in {list(rules.cpu_implementer)}")
            score += SCORES["cpu_implementer"]
            reasons.append(f"CPU implementer {hits[0]}")
        if rules.cpu_part:
            hits = [value for value in cpu.parts if value in rules.cpu_part]
            if not hits:
                return miss(f"CPU part {list(cpu.parts)} not in {list(rules.cpu_part)}")
            score += SCORES["cpu_part"]
            reasons.append(f"CPU part {hits[0]}")
        if rules.cpu_model:
            model = cpu.model_name
            hit = next((text for text in rules.cpu_model if model and text.casefold() in model.casefold()), None)
            if hit is None:
                return miss(f"CPU model {model!r} contains none of {list(rules.cpu_model)}")
            score += SCORES["cpu_model"]
            reasons.append(f"CPU model contains {hit!r}")
    if rules.min_memory_mb is not None or rules.max_memory_mb is not None:
        memory = facts.memory_mb
        low, high = rules.min_memory_mb or 0, rules.max_memory_mb
        wanted = f"{low}-{high if high is not None else ''} MiB"
        if memory is None:
            return miss(f"memory unknown, profile wants {wanted}")
        if memory < low or (high is not None and memory > high):
            return miss(f"memory {memory} MiB outside {wanted}")
        score += SCORES["memory"]
        reasons.append(f"memory {memory} MiB within {wanted}")
    if rules.is_empty:
        return Candidate(profile.name, profile.source, True, 0, ("no rules: matches any machine",))
    if score == 0:
        return miss("none of its rules could be checked: " + "; ".join(reasons))
    return Candidate(profile.name, profile.source, True, score, tuple(reasons))


def fit_to_machine(profile: Profile, facts: MachineFacts) -> tuple[Profile, tuple[str, ...]]:
    """Cap a profile's settings to the machine's CPUs, quota and memory; returns it with what was changed."""
    session, encoding = profile.session, profile.encoding
    notes: list[str] = []
    limit = facts.cpu_limit
    if limit is not None:
        why = _cpu_limit_reason(facts)
        if session.intra_op_threads > limit:
            notes.append(f"intra_op_threads {session.intra_op_threads} -> {limit} ({why})")
            session = dataclasses.replace(session, intra_op_threads=limit)
        if session.inter_op_threads > limit:
            notes.append(f"inter_op_threads {session.inter_op_threads} -> {limit} ({why})")
            session = dataclasses.replace(session, inter_op_threads=limit)
    if facts.limits.cpu_quota is not None and session.allow_spinning:
        quota = f"{facts.limits.cpu_quota:g}-CPU quota"
        notes.append(f"allow_spinning true -> false (a {quota}: spinning threads burn it and get throttled)")
        session = dataclasses.replace(session, allow_spinning=False)
    memory = facts.memory_mb
    if memory is not None:
        cap = max(MIN_TOKEN_BUDGET, memory * TOKENS_PER_MIB)
        if encoding.token_budget > cap:
            notes.append(
                f"token_budget {encoding.token_budget} -> {cap} ({memory} MiB usable x {TOKENS_PER_MIB} tokens/MiB)"
            )
            encoding = dataclasses.replace(encoding, token_budget=cap)
        fallback_cap = memory // FALLBACK_SHARE
        if encoding.fallback_tokenizer_mib > fallback_cap:
            notes.append(
                f"fallback_tokenizer_mib {encoding.fallback_tokenizer_mib} -> {fallback_cap} "
                f"(1/{FALLBACK_SHARE} of {memory} MiB usable)"
            )
            encoding = dataclasses.replace(encoding, fallback_tokenizer_mib=max(1, fallback_cap))
        if memory <= FAST_PATH_MIN_MIB and encoding.ascii_fast_path:
            notes.append(f"ascii_fast_path true -> false ({memory} MiB usable, {FAST_PATH_MIN_MIB} MiB or less)")
            encoding = dataclasses.replace(encoding, ascii_fast_path=False)
    if not notes:
        return profile, ()
    return dataclasses.replace(profile, session=session, encoding=encoding), tuple(notes)


def _cpu_limit_reason(facts: MachineFacts) -> str:
    parts = []
    if facts.limits.cpu_quota is not None:
        parts.append(f"cgroup CPU quota {facts.limits.cpu_quota:g}")
    if facts.limits.cpuset_cpus is not None:
        parts.append(f"cpuset of {facts.limits.cpuset_cpus}")
    if facts.affinity_cpus is not None:
        parts.append(f"affinity of {facts.affinity_cpus}")
    if facts.cpu is not None:
        parts.append(f"{facts.cpu.count} CPUs in /proc/cpuinfo")
    return "limit " + str(facts.cpu_limit) + " from " + ", ".join(parts)


def _best(candidates: list[tuple[Profile, Candidate]]) -> tuple[Profile, Candidate] | None:
    matched = [pair for pair in candidates if pair[1].matched]
    if not matched:
        return None
    top = max(candidate.score for _, candidate in matched)
    tied = sorted((pair for pair in matched if pair[1].score == top), key=lambda pair: pair[0].name)
    if len(tied) > 1:
        logger.warning(
            "profiles %s match equally well (score %d); using %s", [p.name for p, _ in tied], top, tied[0][0].name
        )
    return tied[0]


def explain_detection(
    root: str | Path = "/", *, machine: str | None = None, user_dir: Path | None = None, include_user: bool = True
) -> Detection:
    """Detect the profile for the machine under `root`, keeping every fact and reason."""
    facts = read_facts(root, machine=machine)
    folder = user_profile_dir() if user_dir is None else Path(user_dir)
    users = [(p, evaluate(p, facts)) for p in user_profiles(folder)] if include_user else []
    builtins = [(p, evaluate(p, facts)) for p in builtin_profiles()]
    best_user = _best(users)
    if best_user is not None:
        chosen, candidate = best_user
        reason = f"user profile {chosen.name} ({chosen.path}) matches: {'; '.join(candidate.reasons)}"
    else:
        best = _best(builtins)
        if best is not None:
            chosen, candidate = best
            reason = (
                f"built-in profile {chosen.name} scores highest ({candidate.score}): {'; '.join(candidate.reasons)}"
            )
        else:
            chosen = next((p for p, _ in builtins if p.name == FALLBACK_PROFILE), Profile(name=FALLBACK_PROFILE))
            reason = f"no profile matches; falling back to {FALLBACK_PROFILE}"
    fitted, adjustments = fit_to_machine(chosen, facts)
    return Detection(
        facts=facts,
        candidates=tuple(candidate for _, candidate in users + builtins),
        chosen=chosen,
        profile=fitted,
        adjustments=adjustments,
        reason=reason,
        user_dir=folder,
    )


def detect(root: str | Path = "/", *, machine: str | None = None, user_dir: Path | None = None) -> Profile:
    """The profile for the machine under `root`: a matching user profile, else the best built-in, fitted."""
    return explain_detection(root, machine=machine, user_dir=user_dir).profile


def explain_resolution(
    profile: str | Path | Profile | None = AUTO,
    *,
    root: str | Path = "/",
    machine: str | None = None,
    user_dir: Path | None = None,
) -> Resolution:
    """Run the precedence chain and say which step decided."""
    if isinstance(profile, Profile):
        return Resolution("argument", profile, None)
    if profile is not None and str(profile) != AUTO:
        chosen = load_profile(profile, user_dir=user_dir)
        fitted, notes = fit_to_machine(chosen, read_facts(root, machine=machine))
        return Resolution("argument", fitted, None, notes)
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env and from_env != AUTO:
        try:
            chosen = load_profile(from_env, user_dir=user_dir)
        except ProfileError as exc:
            raise ProfileError(f"{ENV_VAR}={from_env!r}: {exc}") from None
        fitted, notes = fit_to_machine(chosen, read_facts(root, machine=machine))
        return Resolution("environment", fitted, None, notes)
    detection = explain_detection(root, machine=machine, user_dir=user_dir)
    via: Via = "detection"
    if detection.chosen.source == "user":
        via = "user profile"
    elif detection.chosen.name == FALLBACK_PROFILE:
        via = "fallback"  # nothing more specific than `generic` matched
    return Resolution(via, detection.profile, detection, detection.adjustments)


def resolve_profile(
    profile: str | Path | Profile | None = AUTO,
    *,
    root: str | Path = "/",
    machine: str | None = None,
    user_dir: Path | None = None,
) -> Profile:
    """The profile to use: `profile` (a `Profile`, name or .toml path) > $M2V_EDGE_PROFILE > detection.

    `"auto"` or None runs the chain from the environment variable down. A `Profile` object is used as it
    is; names and paths are fitted to the machine's limits like detected profiles.
    """
    resolution = explain_resolution(profile, root=root, machine=machine, user_dir=user_dir)
    for note in resolution.adjustments:
        logger.info("profile %s fitted to this machine: %s", resolution.profile.name, note)
    logger.info("device profile %s (via %s)", resolution.profile.name, resolution.via)
    return resolution.profile
