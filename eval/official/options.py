"""Family options of a comparison (``--set KEY=VALUE``): known keys, typed like their defaults, in range."""
from __future__ import annotations

__all__ = ["resolve"]


def resolve(family: str, options: dict, defaults: dict, ranges: dict | None = None,
            choices: dict | None = None) -> dict:
    """``defaults`` updated with ``options``: unknown keys raise; each value is cast to its default's
    type (a None default keeps None or casts to int); ``ranges`` ``{key: (lo, hi)}`` bound values
    (inclusive, None = open); ``choices`` ``{key: allowed values}``."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} ({family} takes: {', '.join(defaults)})")
    out = dict(defaults)
    for key, value in options.items():
        kind = type(defaults[key]) if defaults[key] is not None else int
        out[key] = value if value is None else kind(value)
    for key, (lo, hi) in (ranges or {}).items():
        v = out[key]
        if v is not None and ((lo is not None and v < lo) or (hi is not None and v > hi)):
            raise ValueError(f"{family} option {key} must lie in [{lo if lo is not None else '-inf'}, "
                             f"{hi if hi is not None else 'inf'}], got {v}")
    for key, allowed in (choices or {}).items():
        if out[key] not in allowed:
            raise ValueError(f"{family} option {key} must be one of {list(allowed)}, got {out[key]!r}")
    return out
