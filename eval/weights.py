"""Where the feature networks of the metrics get their weights (Inception, LPIPS backbone, I3D).

Order: an explicit path, then an environment variable, then the torch hub cache
(``torch.hub.get_dir()/checkpoints/<file>``), then a download from the standard URL(s) into
that cache (skipped when ``HF_HUB_OFFLINE`` / ``ZOO_OFFLINE`` is set). Files are read with
``torch.load(weights_only=True)`` or safetensors, never by unpickling code.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from zoo.hub import WeightsNotFoundError

__all__ = ["resolve_weights", "WeightsNotFoundError"]

log = logging.getLogger(__name__)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("ZOO_OFFLINE", "HF_HUB_OFFLINE"))


def resolve_weights(what: str, filename: str, *, path: str | os.PathLike | None = None, env: str | None = None,
                    urls: Sequence[str] = (), hash_prefix: str | None = None, cli_flag: str | None = None,
                    download: bool = True, aliases: Sequence[str] = ()) -> Path:
    """Local path of the weight file ``filename`` of the feature network ``what``.

    path: explicit file (wins); env: environment variable naming a file; urls: standard
    download locations tried in order; hash_prefix: expected start of the file's SHA-256
    (checked on download); aliases: other names of the same file in the cache. Raises :class:`WeightsNotFoundError` saying how to provide the file.
    """
    if path is None and env and os.environ.get(env):
        path = os.environ[env]
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"{what} weights: {p} is not a file")
        return p
    import torch.hub

    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    for name in (filename, *aliases):
        if (cached.parent / name).is_file():
            return cached.parent / name
    errors = []
    if download and not _offline():
        cached.parent.mkdir(parents=True, exist_ok=True)
        for url in urls:
            try:
                torch.hub.download_url_to_file(url, str(cached), hash_prefix=hash_prefix, progress=False)
                return cached
            except Exception as e:  # network errors come in many types
                errors.append(f"{url}: {type(e).__name__}: {e}")
                log.warning("could not download %s weights from %s: %s", what, url, e)
    how = ["pass the file's path" + (f" with {cli_flag}" if cli_flag else "")]
    if env:
        how.append(f"set the environment variable {env}=/path/to/{filename}")
    how.append(f"or put it at {cached}")
    msg = (f"{what} weights '{filename}' are not available"
           + (f" (standard source: {urls[0]})" if urls else "") + ". To provide them offline, "
           + "; ".join(how) + ".")
    if errors:
        msg += "\nDownload attempts:\n  " + "\n  ".join(errors)
    raise WeightsNotFoundError(msg)
