"""Joint search of residual-VQ ids: beam search over the levels, in any Euclidean metric.

Greedy residual quantisation picks, level by level, the code nearest to what the earlier levels
left, so an early choice that leaves an awkward residual is never undone. Beam search keeps, at
every level, the ``beam`` partial sums with the smallest remaining error (the candidates are every
code of the level appended to every kept sum) and returns the best full sum: with ``beam=1`` it is
the greedy search, with ``beam >= K^(L-1)`` the exhaustive one. Only the encoder changes: the ids
mean the same codes, so any decoder of the residual VQ decodes them.

A weighted metric ``||A (z - q)||^2`` with a fixed matrix ``A`` is the plain one after a change of
variables: with ``A = Q R`` (thin QR), search ``R z`` against codebooks ``R c`` (see
:func:`metric_codebooks`), or, when the target lives in the range space of a decoding map, against
``Q^T (target)`` directly.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["residual_beam_search", "metric_codebooks"]

#: largest ``rows * beam * K`` distance block held at once by the eager search (float32: 256 MiB)
_BLOCK = 1 << 26


def metric_codebooks(codebooks: Sequence[torch.Tensor], r: torch.Tensor) -> list[torch.Tensor]:
    """Codebooks ``[K, D]`` mapped by the ``[D', D]`` matrix ``r`` (``c -> r c``): ``[K, D']`` each, float32."""
    return [c.float() @ r.float().t() for c in codebooks]


def _search_rows(z: torch.Tensor, codebooks: Sequence[torch.Tensor], norms: Sequence[torch.Tensor],
                 beam: int) -> torch.Tensor:
    n, d = z.shape
    residual = z[:, None, :]  # [N, b, D]: the kept partial sums' residuals, best first
    ids = None  # [N, b, levels so far]
    for codes, code_norms in zip(codebooks, norms):
        k, b = codes.shape[0], residual.shape[1]
        # |r - c|^2 = |r|^2 - 2 r.c + |c|^2 for every kept residual and every code: [N, b, K], the
        # |c|^2 - 2 r.c part as one fused matrix product
        flat = residual.reshape(n * b, d)
        dist = torch.addmm(code_norms, flat, codes.t(), alpha=-2.0).view(n, b, k)
        dist = dist + flat.pow(2).sum(-1).view(n, b, 1)
        best = dist.reshape(n, b * k).topk(min(beam, b * k), dim=1, largest=False).indices  # sorted
        src, code = best // k, best % k
        residual = residual.gather(1, src[..., None].expand(-1, -1, d)) - codes[code]
        ids = code[..., None] if ids is None else torch.cat(
            [ids.gather(1, src[..., None].expand(-1, -1, ids.shape[-1])), code[..., None]], dim=-1)
    return ids[:, 0]


def residual_beam_search(z: torch.Tensor, codebooks: Sequence[torch.Tensor], beam: int = 1) -> torch.Tensor:
    """Ids ``[M, L]`` of the sum of one code per level closest to ``z`` ``[M, D]`` (squared L2), found by
    beam search over the ``L`` levels of ``codebooks`` (``[K_l, D]`` each, first level first).

    beam: partial sums kept per vector at each level (1: greedy residual search). Float32, also
    under autocast (ranking codes needs the bits). Rows are searched in blocks of bounded memory
    (one block while exporting a graph).
    """
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    if z.dim() != 2 or not codebooks or any(c.dim() != 2 or c.shape[1] != z.shape[1] for c in codebooks):
        raise ValueError(f"need z [M, D] and codebooks [K, D] with the same D, got {tuple(z.shape)} and "
                         f"{[tuple(c.shape) for c in codebooks]}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        codebooks = [c.float() for c in codebooks]
        norms = [c.pow(2).sum(1) for c in codebooks]
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return _search_rows(z, codebooks, norms, beam)
        if z.shape[0] == 0:
            return z.new_zeros((0, len(codebooks)), dtype=torch.long)
        rows = max(1, _BLOCK // (beam * max(c.shape[0] for c in codebooks)))
        return torch.cat([_search_rows(z[i:i + rows], codebooks, norms, beam) for i in range(0, z.shape[0], rows)])
