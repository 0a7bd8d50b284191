"""Fetching a Model2Vec model's files from the Hugging Face Hub, or from huggingface_hub's local cache."""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path

from m2v_edge.errors import MissingExtraError, SourceModelError

logger = logging.getLogger(__name__)


def download(repo_id: str, *, revision: str | None, token: str | None, patterns: list[str]) -> Path:
    """Fetch (or find in the standard cache) the files of Hub model `repo_id` that match `patterns` and return the
    snapshot folder.

    Honours HF_HUB_OFFLINE. When the Hub cannot be reached (no network, a refused connection, a timeout), the cached
    snapshot is used: huggingface_hub falls back to it by itself for branches and tags, but not for a pinned commit,
    whose file listing it fetches online.
    """
    try:
        import huggingface_hub
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise MissingExtraError("export", "exporting from the Hugging Face Hub") from None
    fetch = functools.partial(
        huggingface_hub.snapshot_download, repo_id, revision=revision, token=token, allow_patterns=patterns
    )
    # Offline, look in the cache only: without this, huggingface_hub (1.x) resolves a commit-hash revision by
    # listing the repo tree online unless a trees/<commit>.json listing happens to be cached, and fails.
    offline = bool(getattr(hub_constants, "HF_HUB_OFFLINE", False))
    wanted = f"Hub model {repo_id} (revision {revision or 'main'})"
    try:
        try:
            return Path(fetch(local_files_only=offline))
        except _connection_errors() as exc:
            logger.info("the Hub cannot be reached (%s); looking for %s in the cache", exc, wanted)
            return Path(fetch(local_files_only=True))
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError):
        raise SourceModelError(
            f"Hub model {repo_id} was not found or is private/gated: check the id, or set HF_TOKEN (or pass token=) "
            "with a token that may read it"
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise SourceModelError(f"Hub model {repo_id} has no revision {revision!r}") from None
    except hub_errors.LocalEntryNotFoundError:
        raise SourceModelError(
            f"{wanted} is not in the local cache (or only partly) and the Hub cannot be reached (offline, no network "
            "or HF_HUB_OFFLINE=1): connect once, or pass a local folder"
        ) from None
    except (hub_errors.HfHubHTTPError, OSError) as exc:
        raise SourceModelError(f"cannot download {wanted} from the Hub: {exc}") from None


def _connection_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the Hub cannot be reached": huggingface_hub 2.x raises httpx2's transport errors
    (connection refused, DNS, timeouts, proxies), 1.x httpx's, 0.x those of requests; all may raise the built-in
    ones."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name, attributes in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                             ("requests", ("ConnectionError", "Timeout"))):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors += [getattr(module, attribute) for attribute in attributes if hasattr(module, attribute)]
    return tuple(errors)
