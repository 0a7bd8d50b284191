"""Installed model packages: bundles shipped as wheels and loaded by name.

A model package (built by `m2v-edge package`, see `m2v_edge.model_wheel`) is the distribution
`m2v-edge-model-<name>`. It holds a bundle in `<module>/bundle/` and registers it in the `m2v_edge.models`
entry-point group as `<name> = <module>:BUNDLE`, where `BUNDLE` is the bundle folder's path.

What a model source names is decided in this order (`resolve_bundle`, used by `EdgeEmbedder`;
`Model2VecEmbeddingFunction` adds the last step):

1. an existing path: a bundle folder (or, for `Model2VecEmbeddingFunction`, a Model2Vec model folder);
2. an installed model package of that name (compared case-insensitively, `-`, `_` and `.` alike);
3. a Hugging Face Hub id (`org/name`), exported once into the cache (needs the `export` extra).

Only the standard library is used here (`importlib.metadata`, imported on first use), so the runtime can call it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from m2v_edge.errors import BundleError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "m2v_edge.models"
DISTRIBUTION_PREFIX = "m2v-edge-model-"
MODULE_PREFIX = "m2v_edge_model_"
BUNDLE_FOLDER = "bundle"
"""The bundle's folder inside a model package's module."""

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def is_model_name(text: str) -> bool:
    """Whether `text` can be a model name: letters, digits, `.`, `-`, `_`; first and last a letter or digit."""
    return _NAME.fullmatch(text) is not None


def canonical_name(name: str) -> str:
    """The form names are compared in: lower case, each run of `-`, `_`, `.` replaced by one `-` (as pip does)."""
    if not is_model_name(name):
        raise BundleError(
            f"{name!r} is not a valid model name: use letters, digits, '.', '-' and '_', "
            "starting and ending with a letter or digit"
        )
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_name(name: str) -> str:
    """The pip distribution name of a model package, e.g. `m2v-edge-model-potion-base-8m`."""
    return DISTRIBUTION_PREFIX + canonical_name(name)


def module_name(name: str) -> str:
    """The importable module a model package installs, e.g. `m2v_edge_model_potion_base_8m`."""
    return MODULE_PREFIX + canonical_name(name).replace("-", "_")


@dataclass(frozen=True)
class InstalledModel:
    """One model package found in the `m2v_edge.models` entry-point group."""

    name: str
    """The model name (canonical form)."""
    distribution: str
    """The installed distribution that registered it, e.g. `m2v-edge-model-potion-base-8m`."""
    version: str
    entry_point: str
    """The entry point's value, `module:attribute`."""

    @property
    def bundle_dir(self) -> Path:
        """The bundle folder: the entry point's object (loading it imports the package's tiny module)."""
        from importlib.metadata import EntryPoint

        point = EntryPoint(name=self.name, value=self.entry_point, group=ENTRY_POINT_GROUP)
        try:
            target = point.load()
        except Exception as exc:  # noqa: BLE001  (a broken package can raise anything while importing)
            raise BundleError(
                f"model package {self.distribution} {self.version} is installed but its bundle cannot be located "
                f"({self.entry_point}: {exc}); reinstall it: pip install --force-reinstall {self.distribution}"
            ) from None
        if not isinstance(target, (str, os.PathLike)):
            raise BundleError(
                f"model package {self.distribution} registers {self.entry_point}, which is not a folder path; "
                "rebuild it with 'm2v-edge package'"
            )
        return Path(target)


def installed_models() -> list[InstalledModel]:
    """Every model package installed in this environment, sorted by name then distribution."""
    from importlib.metadata import entry_points

    found = {_describe(point) for point in entry_points(group=ENTRY_POINT_GROUP) if is_model_name(point.name)}
    return sorted(found, key=lambda model: (model.name, model.distribution))


def find_installed(name: str) -> InstalledModel | None:
    """The installed model package called `name`, None if there is none (or `name` is not a model name).

    :raises BundleError: if two installed distributions register the same name.
    """
    if not is_model_name(name):
        return None
    wanted = canonical_name(name)
    matches = [model for model in installed_models() if model.name == wanted]
    if len(matches) > 1:
        owners = ", ".join(f"{model.distribution} {model.version}" for model in matches)
        raise BundleError(
            f"model name {name!r} is registered by more than one installed package ({owners}); "
            "uninstall all but one (pip uninstall NAME)"
        )
    return matches[0] if matches else None


def installed_bundle(name: str) -> Path | None:
    """The bundle folder of the installed model package called `name`, None if there is none."""
    model = find_installed(name)
    return model.bundle_dir if model is not None else None


def resolve_bundle(name_or_path: str | os.PathLike[str]) -> Path:
    """The bundle folder a user means: an existing path as given, else an installed model package's bundle.

    :raises BundleError: if `name_or_path` is neither an existing path nor the name of an installed model package.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    text = os.fspath(name_or_path)
    if not is_model_name(text):
        raise BundleError(
            f"bundle folder {text} does not exist; export one with 'm2v-edge export', "
            "or give the name of an installed model package (see 'm2v-edge models')"
        )
    bundle = installed_bundle(text)
    if bundle is not None:
        return bundle
    names = sorted({model.name for model in installed_models()})
    known = f"installed models: {', '.join(names)}" if names else "no model packages are installed"
    raise BundleError(
        f"bundle folder {text} does not exist and no installed model package is named {text!r} ({known}); "
        f"install it (pip install {distribution_name(text)}) or give a bundle folder"
    )


def _describe(point: EntryPoint) -> InstalledModel:
    dist = getattr(point, "dist", None)
    distribution = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    return InstalledModel(
        name=canonical_name(point.name), distribution=distribution, version=version, entry_point=point.value
    )
