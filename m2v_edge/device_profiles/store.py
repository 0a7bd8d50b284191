"""Where profiles live: shipped with m2v-edge, in the user's folder, or anywhere as a .toml file.

User profiles are read from `$XDG_CONFIG_HOME/m2v-edge/profiles/*.toml` (default `~/.config/...`); a user
profile with the name of a built-in one shadows it.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from m2v_edge.device_profiles._toml import dumps
from m2v_edge.device_profiles.profile import Profile, ProfileSource
from m2v_edge.device_profiles.schema import NAME_PATTERN, parse_profile, profile_to_data
from m2v_edge.errors import ProfileError
from m2v_edge.paths import config_dir

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

logger = logging.getLogger(__name__)

PROFILE_SUFFIX = ".toml"
FALLBACK_PROFILE = "generic"


def user_profile_dir() -> Path:
    """`$XDG_CONFIG_HOME/m2v-edge/profiles` (default `~/.config/m2v-edge/profiles`); it may not exist."""
    return config_dir() / "profiles"


def read_profile_file(path: str | Path, *, source: ProfileSource = "file") -> Profile:
    """Read and validate one profile file; its name defaults to the file name without `.toml`."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ProfileError(f"profile file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise ProfileError(f"cannot read profile file {path}: {exc.strerror or exc}") from None
    return parse_profile(text, name=path.stem, where=str(path), path=path, source=source)


def _builtin_folder() -> Traversable:
    """The shipped profiles folder; importlib.resources only when the package is not plain files (a zip)."""
    folder = Path(__file__).with_name("profiles")
    if folder.is_dir():
        return folder
    from importlib import resources

    return resources.files("m2v_edge.device_profiles").joinpath("profiles")


def builtin_profiles() -> list[Profile]:
    """The profiles shipped with m2v-edge, sorted by name (read once per process)."""
    return list(_read_builtin_profiles())


@functools.lru_cache(maxsize=1)
def _read_builtin_profiles() -> tuple[Profile, ...]:
    folder = _builtin_folder()
    profiles = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name.rsplit(".", 1)[0]):
        if not entry.name.endswith(PROFILE_SUFFIX):
            continue
        stem = entry.name[: -len(PROFILE_SUFFIX)]
        where = f"built-in profile {entry.name}"
        path = Path(str(entry)) if os.path.isfile(str(entry)) else None  # None inside a zip
        profile = parse_profile(entry.read_text(encoding="utf-8"), name=stem, where=where, path=path, source="builtin")
        if profile.name != stem:
            raise ProfileError(f"{where}: 'name' is {profile.name!r} but must equal the file name {stem!r}")
        profiles.append(profile)
    return tuple(profiles)


def user_profiles(folder: Path | None = None) -> list[Profile]:
    """The user's profiles (every `*.toml` in `folder`, default `user_profile_dir()`), sorted by file name."""
    folder = user_profile_dir() if folder is None else Path(folder)
    try:
        paths = sorted(
            (path for path in folder.iterdir() if path.suffix == PROFILE_SUFFIX and path.is_file()),
            key=lambda p: p.stem,
        )
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise ProfileError(f"user profile folder {folder} is not a folder") from None
    except OSError as exc:
        raise ProfileError(f"cannot list user profile folder {folder}: {exc.strerror or exc}") from None
    profiles = [read_profile_file(path, source="user") for path in paths]
    seen: dict[str, Path | None] = {}
    for profile in profiles:
        if profile.name in seen:
            raise ProfileError(f"{profile.path} and {seen[profile.name]} both define profile {profile.name!r}")
        seen[profile.name] = profile.path
    return profiles


def list_profiles(user_dir: Path | None = None) -> list[Profile]:
    """Built-in profiles, then the user's (a user profile may shadow a built-in of the same name)."""
    return builtin_profiles() + user_profiles(user_dir)


def _looks_like_path(value: str) -> bool:
    return value.endswith(PROFILE_SUFFIX) or os.sep in value or (os.altsep is not None and os.altsep in value)


def load_profile(name_or_path: str | Path, *, user_dir: Path | None = None) -> Profile:
    """A profile by name (user profiles first, then built-ins) or from a `.toml` path."""
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        return read_profile_file(name_or_path)
    name = str(name_or_path).strip()
    for profile in user_profiles(user_dir):
        if profile.name == name:
            return profile
    builtins = builtin_profiles()
    for profile in builtins:
        if profile.name == name:
            return profile
    known = sorted({p.name for p in builtins} | {p.name for p in user_profiles(user_dir)})
    raise ProfileError(
        f"unknown device profile {name!r}; known profiles: {', '.join(known)} (or a path to a .toml file)"
    )


def render_profile(profile: Profile, *, header: str = "") -> str:
    """The TOML text of a profile, as `write_user_profile` saves it."""
    return dumps(profile_to_data(profile), header=header)


def write_user_profile(profile: Profile, *, header: str = "", user_dir: Path | None = None) -> Path:
    """Save a profile as `<user_dir>/<name>.toml` (mode 0600, folder 0700), replacing an older one atomically."""
    if not NAME_PATTERN.match(profile.name):
        raise ProfileError(f"cannot save profile named {profile.name!r}: use a-z, 0-9, '.', '_' and '-' only")
    folder = user_profile_dir() if user_dir is None else Path(user_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"{profile.name}{PROFILE_SUFFIX}"
    text = render_profile(profile, header=header)
    # The written text must read back as the same settings; refuse to save anything that would not load.
    parse_profile(text, name=profile.name, where=str(target))
    import tempfile  # only needed when writing

    descriptor, temporary = tempfile.mkstemp(prefix=f".{profile.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp already creates the file readable and writable by its owner only (0600).
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("saved device profile %s to %s", profile.name, target)
    return target
