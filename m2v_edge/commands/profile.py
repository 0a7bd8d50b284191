"""`m2v-edge profile list|show|detect` and `m2v-edge tune`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from m2v_edge.commands.progress import Progress, show_progress
from m2v_edge.device_profiles import (
    ENV_VAR,
    explain_detection,
    explain_resolution,
    list_profiles,
    load_profile,
    render_profile,
)

if TYPE_CHECKING:
    from m2v_edge.device_profiles import Profile
    from m2v_edge.device_profiles.tune import TuneResult, TuneSetting


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `profile` command group and the `tune` command."""
    profile = subparsers.add_parser("profile", help="list, show and detect device profiles")
    actions = profile.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list built-in and user profiles (* marks the detected one)")
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="print a profile as TOML (default: the one this machine uses)")
    show.add_argument("name", nargs="?", help="profile name or .toml path (default: resolve as the runtime does)")
    show.add_argument("--raw", action="store_true", help="print the profile file as written, with its comments")
    show.set_defaults(handler=_show)

    detect = actions.add_parser("detect", help="show what detection read and why it chose its profile")
    detect.add_argument("--root", type=Path, default=Path("/"), help="read /proc and /sys under ROOT (default /)")
    detect.add_argument("--machine", help="architecture to assume (default: this machine's)")
    detect.add_argument(
        "--bundle", action="append", default=[], metavar="BUNDLE",
        help="also say which tokenizing path this bundle (folder or installed model) takes here, and why (repeatable)",
    )
    detect.set_defaults(handler=_detect)

    tune = subparsers.add_parser("tune", help="measure settings on this device; --write saves the best as a profile")
    tune.add_argument("bundle", type=Path, help="bundle folder")
    tune.add_argument("--threads", type=_ints, help="comma-separated thread counts (default 1,2,4 up to the CPU limit)")
    tune.add_argument("--variants", type=_words, help="comma-separated variants (default: all in the bundle)")
    tune.add_argument("--budgets", type=_ints, help="comma-separated token budgets (default 1024,4096,16384)")
    tune.add_argument("--objective", choices=("throughput", "latency", "memory"), default="throughput")
    tune.add_argument("--profile", default="auto", help="profile giving the other session settings (default auto)")
    tune.add_argument("--texts", type=Path, help="text file, one text per line (default: the built-in corpus)")
    tune.add_argument("--min-seconds", type=_positive_seconds, default=1.0,
                      help="least time spent on each throughput measurement")
    tune.add_argument("--latency-samples", type=_count, default=50, help="single-text calls per latency measurement")
    tune.add_argument("--write", action="store_true", help="save the best setting as a user profile")
    tune.add_argument("--name", default="tuned", help="name of the saved profile (default tuned)")
    tune.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    tune.set_defaults(handler=_tune)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _count(text: str) -> int:
    values = _ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one integer >= 1, got {text!r}")
    return values[0]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _words(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def _list(args: argparse.Namespace) -> int:
    profiles = list_profiles()
    detected = explain_detection().chosen
    width = max(len(p.name) for p in profiles)
    for profile in profiles:
        mark = "*" if (profile.name, profile.source) == (detected.name, detected.source) else " "
        print(f"{mark} {profile.name:<{width}}  {profile.source:<7}  {profile.description}")
    if os.environ.get(ENV_VAR):
        print(f"\n{ENV_VAR}={os.environ[ENV_VAR]} overrides detection for the runtime")
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.name:
        profile = load_profile(args.name)
        header = f"{profile.source} profile, from {profile.path}" if profile.path else f"{profile.source} profile"
        notes: tuple[str, ...] = ()
    else:
        resolution = explain_resolution("auto")
        profile, notes = resolution.profile, resolution.adjustments
        header = f"profile used on this machine (chosen by {resolution.via})"
        if profile.path:
            header += f", from {profile.path}"
    if args.raw:
        if profile.path is None:
            raise ValueError(f"profile {profile.name} has no file to print")
        sys.stdout.write(profile.path.read_text(encoding="utf-8"))
        return 0
    lines = [header] + ([f"fitted to this machine: {note}" for note in notes] if notes else [])
    sys.stdout.write(render_profile(profile, header="\n".join(lines)))
    return 0


def _detect(args: argparse.Namespace) -> int:
    if not args.root.is_dir():
        raise ValueError(f"--root {args.root} is not a folder (it stands for / of the machine to read)")
    detection = explain_detection(args.root, machine=args.machine)
    facts = detection.facts
    print(f"read under {facts.root}:")
    for read in detection.reads:
        print(f"  {read.status:<9} {read.path}: {read.detail}")
    print("fallbacks:" if detection.fallbacks else "fallbacks: none")
    for note in detection.fallbacks:
        print(f"  {note}")
    for warning in facts.warnings:
        print(f"warning: {warning}")
    cpu = facts.cpu
    print("facts:")
    print(f"  architecture   {facts.machine}")
    print(f"  board          {facts.board or 'unknown'}")
    print(
        f"  CPUs           {cpu.count if cpu else 'unknown'}"
        + (f" (parts {', '.join(cpu.parts)})" if cpu and cpu.parts else "")
    )
    print(f"  CPU model      {cpu.model_name if cpu and cpu.model_name else 'unknown'}")
    print(f"  memory         {facts.memory_mb if facts.memory_mb is not None else 'unknown'} MiB usable")
    quota = facts.limits.cpu_quota
    print(f"  CPU quota      {f'{quota:g} CPUs' if quota is not None else 'none'}")
    print(f"  thread limit   {facts.cpu_limit if facts.cpu_limit is not None else 'unknown'}")
    print(f"candidates (user profiles from {detection.user_dir}):")
    for candidate in sorted(detection.candidates, key=lambda c: (not c.matched, -c.score, c.name)):
        status = f"match  {candidate.score:>3}" if candidate.matched else "no match   "
        print(f"  {candidate.name:<22} {candidate.source:<7} {status}  {'; '.join(candidate.reasons)}")
    print(f"chosen: {detection.chosen.name} ({detection.reason})")
    if detection.adjustments:
        print("fitted to this machine:")
        for note in detection.adjustments:
            print(f"  {note}")
    s, e = detection.profile.session, detection.profile.encoding
    print(
        f"settings: {s.intra_op_threads} intra-op / {s.inter_op_threads} inter-op threads, {s.execution_mode}, "
        f"optimisation {s.graph_optimization_level}, arena {_on(s.cpu_mem_arena)}, mem pattern {_on(s.mem_pattern)}, "
        f"spinning {_on(s.allow_spinning)}; variants {', '.join(e.variants)}; token budget {e.token_budget}; "
        f"ASCII fast path {_on(e.ascii_fast_path)}"
    )
    if os.environ.get(ENV_VAR):
        print(f"note: {ENV_VAR}={os.environ[ENV_VAR]} is set; the runtime uses it instead of detection")
    _print_tokenizing(args.bundle, detection.profile)
    return 0


def _print_tokenizing(bundles: list[str], profile: Profile) -> None:
    """The native core's state here, and the path each bundle's texts take (as `EdgeEmbedder` would decide)."""
    from m2v_edge.bundle import read_manifest
    from m2v_edge.errors import M2VEdgeError
    from m2v_edge.models import resolve_bundle
    from m2v_edge.runtime import native
    from m2v_edge.runtime.tokenizing import choose_path

    state = f"version {native.core_version()}" if native.available() else native.unavailable_reason()
    print(f"native core: {state}")
    for name in bundles:
        folder = resolve_bundle(name)
        try:
            choice = choose_path(
                folder, read_manifest(folder), ascii_fast_path=profile.encoding.ascii_fast_path,
                fallback_limit_mib=profile.encoding.fallback_tokenizer_mib,
            )
            line = choice.path + (f" ({choice.why})" if choice.why else "")
        except M2VEdgeError as exc:
            line = f"refused: {exc}"
        print(f"bundle {folder}: {line}")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _tune_progress(enabled: bool) -> Callable[[int, int, TuneSetting, TuneResult | None], None]:
    """Report each setting as it starts (named) and ends (counted) on a progress bar (when `enabled`)."""
    bar = Progress("tuning", enabled, unit="setting")

    def report(done: int, total: int, setting: TuneSetting, result: TuneResult | None) -> None:
        bar.update(done, total, f"{setting.threads}t {setting.variant} {setting.token_budget}")
        if result is not None and done == total:
            bar.close()

    return report


def _tune(args: argparse.Namespace) -> int:
    from m2v_edge.device_profiles import explain_detection, resolve_profile, write_user_profile
    from m2v_edge.device_profiles.schema import NAME_PATTERN
    from m2v_edge.device_profiles.tune import TuneGrid, best_result, corpus_texts, default_grid, tune, tuned_profile

    if args.write and not NAME_PATTERN.match(args.name):  # refused now, not after minutes of tuning
        raise ValueError(f"cannot save a profile named {args.name!r}: use a-z, 0-9, '.', '_' and '-' only")
    grid = default_grid(args.bundle)
    grid = TuneGrid(args.threads or grid.threads, args.variants or grid.variants, args.budgets or grid.token_budgets)
    texts = None
    if args.texts is not None:
        texts = [line for line in args.texts.read_text(encoding="utf-8").splitlines() if line.strip()]
    base = resolve_profile(args.profile)
    results = tune(
        args.bundle,
        grid,
        texts,
        profile=base,
        min_seconds=args.min_seconds,
        latency_samples=args.latency_samples,
        progress=_tune_progress(show_progress(args.progress)),
    )
    best = best_result(results, args.objective)
    count = len(texts) if texts is not None else len(corpus_texts())
    print(f"base profile: {base.name}; {count} texts; peak = whole worker process (VmHWM)")
    table = _table(results, best)
    print("\n".join(table))
    s = best.setting
    print(f"best ({args.objective}): {s.threads} threads, {s.variant}, token budget {s.token_budget}")
    if args.write:
        profile = tuned_profile(best, base, name=args.name, objective=args.objective)
        header = "\n".join(["written by m2v-edge tune; edit or delete freely", "", *table])
        path = write_user_profile(profile, header=header)
        chosen = explain_detection().chosen
        print(f"saved profile {profile.name} to {path}")
        if chosen.name == profile.name and chosen.source == "user":
            print("detection now chooses it on this machine")
        else:
            print(f"warning: detection still chooses {chosen.name}; check 'm2v-edge profile detect'", file=sys.stderr)
    return 0


def _table(results: list[TuneResult], best: TuneResult) -> list[str]:
    """The results as aligned text lines, the best one marked with '*'."""
    lines = [
        f"  {'threads':>7} {'variant':<7} {'budget':>6} {'texts/s':>9} {'p50 ms':>7} {'peak MiB':>8} {'load s':>6}"
    ]
    for result in results:
        s = result.setting
        mark = "*" if result is best else " "
        if not result.ok:
            lines.append(f"{mark} {s.threads:>7} {s.variant:<7} {s.token_budget:>6}  failed: {result.error}")
            continue
        peak = f"{result.peak_rss_mb:.1f}" if result.peak_rss_mb is not None else "n/a"
        lines.append(
            f"{mark} {s.threads:>7} {s.variant:<7} {s.token_budget:>6} {result.texts_per_second:>9.0f} "
            f"{result.latency_p50_ms:>7.3f} {peak:>8} {result.load_seconds:>6.2f}"
        )
    return lines
