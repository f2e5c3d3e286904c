"""``nn.LSTM`` as ONNX ``LSTM`` nodes during ``torch.onnx.export`` (dynamo exporter).

``torch.export`` decomposes ``nn.LSTM`` into one set of ops per time step of the example
input, which fixes the sequence length of the exported graph. During export :func:`lstm_onnx`
emits one ONNX ``LSTM`` node per layer instead (``torch.onnx.ops.symbolic``), which runs over
any length. Eager PyTorch never takes this path (its outputs are unchanged).

ONNX ``LSTM`` (opset 7+): X ``[T, B, I]``, W ``[1, 4H, I]``, R ``[1, 4H, H]``, B ``[1, 8H]`` (input
then recurrent biases), gates in the order i, o, f, c; PyTorch stores i, f, g(=c), o.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["lstm_onnx"]

_TORCH_TO_ONNX_GATES = (0, 3, 1, 2)  # ONNX i, o, f, c taken from PyTorch's i, f, g, o chunks


def _gates(w: torch.Tensor) -> torch.Tensor:
    chunks = w.chunk(4, dim=0)
    return torch.cat([chunks[i] for i in _TORCH_TO_ONNX_GATES], dim=0)


def lstm_onnx(lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """x ``[T, B, I]`` -> ``[T, B, H]``: ``lstm(x)[0]`` for a unidirectional, batch-first=False LSTM with
    zero initial state, as ONNX ``LSTM`` nodes. Only valid inside ``torch.onnx.export``."""
    if lstm.bidirectional or lstm.batch_first or lstm.proj_size:
        raise NotImplementedError("lstm_onnx covers unidirectional, sequence-first LSTMs without projection")
    h = lstm.hidden_size
    for layer in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
        if lstm.bias:
            bias = torch.cat([_gates(getattr(lstm, f"bias_ih_l{layer}")), _gates(getattr(lstm, f"bias_hh_l{layer}"))])
        else:
            bias = x.new_zeros(8 * h)
        y = torch.onnx.ops.symbolic(
            "LSTM", (x, _gates(w_ih)[None], _gates(w_hh)[None], bias[None]), {"hidden_size": h},
            dtype=x.dtype, shape=(x.shape[0], 1, x.shape[1], h), version=14)
        x = y[:, 0]
    return x
