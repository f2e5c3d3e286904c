"""Where the official code comes from: a checkout the user supplies, validated before use.

The zoo never ships or copies official code. :func:`require_checkout` checks that a folder holds
the files a family's comparison imports and otherwise raises :class:`OfficialCheckoutError`
saying how to get one (the repository, the commit the comparison was written against, the
Python packages it needs). :func:`official_on_path` makes the checkout importable in the
process that runs the official side (never in the zoo's).
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OfficialSource", "OfficialCheckoutError", "require_checkout", "official_on_path", "missing_packages"]


class OfficialCheckoutError(FileNotFoundError):
    """The official checkout is absent or incomplete (the message says how to get one)."""


@dataclass(frozen=True)
class OfficialSource:
    """An official repository: ``markers`` are files (relative paths) a usable checkout holds;
    ``packages`` the importable modules its code needs beyond PyTorch (``None``: checkout optional,
    the code is an installed package such as ``dmel``)."""

    repo: str
    commit: str
    markers: tuple[str, ...]
    packages: tuple[str, ...] = ()
    installed_package: str | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}"

    def how_to_get(self) -> str:
        name = self.repo.split("/")[1]
        lines = [f"  git clone {self.url} /path/outside/the/zoo/{name}",
                 f"  git -C /path/outside/the/zoo/{name} checkout {self.commit}   # the commit this comparison was written against"]
        if self.packages:
            lines.append(f"  pip install 'tokenizer-zoo[compare]'   # its Python dependencies: {', '.join(self.packages)}")
        if self.installed_package:
            lines.append(f"  (or pip install {self.installed_package}: the installed package is used without a checkout)")
        return "\n".join(lines)


def missing_packages(source: OfficialSource) -> list[str]:
    """The modules of ``source.packages`` that cannot be imported here."""
    return [p for p in source.packages if importlib.util.find_spec(p) is None]


def require_checkout(family: str, source: OfficialSource, path: str | Path | None) -> Path | None:
    """Validate the checkout of ``source`` at ``path``; returns its resolved path.

    ``path`` None is accepted only when ``source.installed_package`` is importable (returns None).
    Raises :class:`OfficialCheckoutError` (absent folder, missing marker files) or
    :class:`ModuleNotFoundError` (its Python dependencies are not installed), each saying how to
    get what is missing.
    """
    if path is None:
        if source.installed_package and importlib.util.find_spec(source.installed_package) is not None:
            return None
        raise OfficialCheckoutError(
            f"--official-src is required for {family}: the comparison imports the official code of "
            f"{source.url} from a checkout you supply (the zoo never ships it). Get one with:\n{source.how_to_get()}")
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise OfficialCheckoutError(f"official checkout for {family} not found at {root}. Get one with:\n"
                                    f"{source.how_to_get()}")
    absent = [m for m in source.markers if not (root / m).is_file()]
    if absent:
        raise OfficialCheckoutError(
            f"{root} is not a checkout of {source.url}: it lacks {', '.join(absent)}. Get one with:\n"
            f"{source.how_to_get()}")
    missing = missing_packages(source)
    if missing:
        raise ModuleNotFoundError(f"the official {family} code needs the Python packages {', '.join(missing)}: "
                                  f"pip install 'tokenizer-zoo[compare]'")
    return root


def official_on_path(root: Path | None) -> None:
    """Put the checkout first on ``sys.path`` of this process (as running from inside it would).
    Called only in the process that runs the official side; None (installed package) does nothing."""
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
