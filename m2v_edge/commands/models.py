"""`m2v-edge package` (a bundle into a pip-installable model wheel) and `m2v-edge models` (the installed ones)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from m2v_edge import __version__


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `package` and `models` commands."""
    package = subparsers.add_parser(
        "package",
        help="turn a bundle into a wheel (m2v-edge-model-NAME) that pip installs offline",
        description="Write a data-only wheel holding the bundle; 'pip install' it, then load the model by name: "
        "EdgeEmbedder('NAME'), 'm2v-edge encode NAME'. The same bundle, name and version give the same bytes.",
    )
    package.add_argument("bundle", type=Path, help="bundle folder (from 'm2v-edge export')")
    package.add_argument("-o", "--output", required=True, type=Path, help="folder to write the wheel into")
    package.add_argument("--name", help="model name (default: the last part of the bundle's source id)")
    package.add_argument("--version", help=f"package version (default: this m2v-edge's, {__version__})")
    package.add_argument(
        "--variants", type=_variant_list, metavar="LIST",
        help="comma-separated variants to ship, e.g. int8 (default: every variant of the bundle)",
    )
    package.set_defaults(handler=_package)

    models = subparsers.add_parser("models", help="list the installed model packages with their variants and sizes")
    models.add_argument("--json", action="store_true", help="print one JSON object per model")
    models.set_defaults(handler=_models)


def _package(args: argparse.Namespace) -> int:
    from m2v_edge.bundle import read_manifest
    from m2v_edge.model_wheel import build_model_wheel, default_model_name
    from m2v_edge.models import distribution_name

    manifest = read_manifest(args.bundle)
    name = args.name if args.name is not None else default_model_name(manifest)
    wheel = build_model_wheel(args.bundle, args.output, name=name, version=args.version, variants=args.variants)
    distribution = distribution_name(name)
    size = _megabytes(wheel.stat().st_size)
    variants = args.variants or tuple(manifest.variants)
    print(f"wrote {wheel} ({size}): {distribution}, variants {', '.join(variants)}")
    print(f"install: pip install {wheel}  (offline: pip install --no-index --find-links {wheel.parent} {distribution})")
    return 0


def _variant_list(text: str) -> tuple[str, ...]:
    variants = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not variants:
        raise argparse.ArgumentTypeError("expected at least one variant, e.g. int8 or int8,fp16")
    return variants


def _models(args: argparse.Namespace) -> int:
    from m2v_edge.models import installed_models

    rows = [_describe(model) for model in installed_models()]
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    if not rows:
        print("no model packages installed; build one with 'm2v-edge package BUNDLE -o DIR' and pip install the wheel")
        return 0
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        head = f"{row['name']:<{width}}  {row['distribution']} {row['version']}"
        if row["error"]:
            print(f"{head}  error: {row['error']}")
            continue
        variants = ", ".join(f"{variant} {_megabytes(size)}" for variant, size in row["variants"].items())
        print(f"{head}  dim {row['dim']}  {variants}")
        print(f"{'':<{width}}  {row['path']}")
    return 0


def _describe(model: Any) -> dict[str, Any]:
    """An installed model as a plain dict; a package whose bundle cannot be read gets an `error` instead."""
    from m2v_edge.bundle import read_manifest
    from m2v_edge.errors import M2VEdgeError

    row: dict[str, Any] = {
        "name": model.name, "distribution": model.distribution, "version": model.version,
        "path": None, "dim": None, "variants": {}, "source": None, "error": None,
    }
    try:
        bundle = model.bundle_dir
        row["path"] = str(bundle)
        manifest = read_manifest(bundle)
    except M2VEdgeError as exc:
        row["error"] = str(exc)
        return row
    row.update(
        dim=manifest.dim,
        source=manifest.source.id,
        variants={variant: manifest.variant_size(variant) for variant in manifest.variants},
    )
    return row


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
