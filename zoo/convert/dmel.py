"""Official dMel configuration -> :class:`zoo.models.dmel.DMel`.

dMel has no learned weights: ``load_official("dmel", None, None)`` builds the settings of the
official example (github.com/apple/dmel ``run_example.py``: 16 kHz, n_fft 1024, 50 ms window,
12.5 ms stride, 80 mels 80-7600 Hz, 4 bits over [-7, 2]). ``config`` may override them with the
official constructor argument names (``LogMelFbank`` / ``DiscretizedLogMelFbank``: ``sampling_freq``,
``n_fft``, ``frame_size_ms``, ``frame_stride_ms``, ``n_filterbank``, ``low_freq``, ``high_freq``,
``n_bits``, ``quantize_min_value``, ``quantize_max_value``, ...) or with ``DMel``'s own names.
A state dict, when given, holds zoo-layout vocoder weights (e.g. a trained Vocos vocoder).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..checkpoint import load_state_dict_strict
from . import register_converter

__all__ = ["convert_dmel", "dmel_kwargs_from_official"]

_RENAME = {"sampling_freq": "sample_rate", "n_filterbank": "n_mels", "low_freq": "f_min", "high_freq": "f_max",
           "quantize_min_value": "min_value", "quantize_max_value": "max_value"}
# official arguments the zoo implements only at their default value
_FIXED = {"window_type": "HANNING", "center": True, "normalized": False, "onesided": True, "discretizer": None,
          "augmentation": None}


def dmel_kwargs_from_official(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Official (or zoo) dMel settings -> ``DMel`` keyword arguments (official example defaults)."""
    import inspect

    from ..models.dmel import DMel, OFFICIAL_DMEL_CONFIG

    kwargs = dict(OFFICIAL_DMEL_CONFIG)
    allowed = set(inspect.signature(DMel.__init__).parameters) - {"self"}
    for key, value in (config or {}).items():
        if key in _FIXED:
            if value != _FIXED[key]:
                raise ValueError(f"dMel option {key}={value!r} is not supported (only {_FIXED[key]!r})")
            continue
        name = _RENAME.get(key, key)
        if name not in allowed:
            raise ValueError(f"unknown dMel setting {key!r}; known: {sorted(set(_RENAME) | allowed | set(_FIXED))}")
        kwargs[name] = value
    if kwargs.get("f_max", 1) is not None and float(kwargs["f_max"]) <= 0:  # official: high_freq <= 0 -> Nyquist
        kwargs["f_max"] = kwargs["sample_rate"] / 2
    return kwargs


@register_converter("dmel")
def convert_dmel(state_dict: Mapping | None, config: Mapping | None, *, config_path=None, files=None, arch=None,
                 **kwargs):
    """Build the official dMel tokenizer (``state_dict``: None, or zoo-layout vocoder weights)."""
    from ..models.dmel import DMel

    tok = DMel(**{**dmel_kwargs_from_official(config), **kwargs})
    has_params = any(True for _ in tok.parameters())
    if state_dict:
        load_state_dict_strict(tok, state_dict, source="dMel state dict")
    elif has_params:
        raise ValueError("this dMel configuration has a trainable vocoder (vocoder='vocos') but no weights were given; "
                         "use zoo.create_tokenizer('dmel_vocos.scratch') to train one, or pass its state dict")
    return tok.eval()
