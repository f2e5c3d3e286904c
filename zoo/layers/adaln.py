"""adaLN-zero conditioning (DiT): a pre-norm transformer block and an output head modulated by a
conditioning vector (e.g. a timestep embedding).

The modulation ``adaLN_modulation = Sequential(SiLU, Linear(cond_dim, S * n * D))`` produces
``n`` vectors of width D per *segment*: ``S > 1`` gives separate modulation to different parts
of the sequence (FlexTok: patches and registers), selected per token by ``segment_ids``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .attention import Attention
from .mlp import build_mlp

__all__ = ["modulate", "segmented", "AdaLNModulation", "AdaLNBlock", "AdaLNHead", "DIT_ORDER"]

#: chunk order of DiT's six block modulation vectors
DIT_ORDER = ("shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp")


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x * (1 + scale) + shift`` (broadcasting)."""
    return x * (1 + scale) + shift


class AdaLNModulation(nn.Module):
    """cond ``[B, C]`` -> ``[B, N|1, n, D]`` modulation vectors (``n`` per token).

    segments: number of independent modulation sets S; ``segment_ids`` ``[N]`` (long, values
    < S) picks the set of each token; with S = 1 the result broadcasts over tokens.
    The Linear is zero-initialised (adaLN-zero); its keys are ``adaLN_modulation.1.*``.
    """

    def __init__(self, cond_dim: int, dim: int, n: int, segments: int = 1, bias: bool = True):
        super().__init__()
        self.dim, self.n, self.segments = dim, n, segments
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, segments * n * dim, bias=bias))
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        if bias:
            nn.init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, cond: torch.Tensor, segment_ids: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """segment_ids: LongTensor ``[N]`` -> ``[B, N, n, D]``; or the lengths of consecutive spans
        (a sequence of S ints, span s using set s) -> the sets themselves ``[B, S, n, D]``, to be
        applied span by span (:func:`segmented`), without a per-token copy."""
        mod = self.adaLN_modulation(cond).view(cond.shape[0], self.segments, self.n, self.dim)
        if self.segments == 1:
            return mod
        if segment_ids is None:
            raise ValueError(f"{self.segments} modulation segments need segment_ids")
        if not isinstance(segment_ids, torch.Tensor):
            if len(segment_ids) != self.segments:
                raise ValueError(f"{self.segments} modulation segments need {self.segments} span lengths, "
                                 f"got {list(segment_ids)}")
            return mod
        return mod.index_select(1, segment_ids)


def segmented(x: torch.Tensor, spans: Sequence[int] | None, fn) -> torch.Tensor:
    """Apply ``fn(part, s)`` in place to consecutive token spans of ``x`` ``[B, N, D]`` (span s of
    length ``spans[s]``); with ``spans`` None, ``fn(x, slice(None))`` once. Returns x."""
    if spans is None:
        fn(x, slice(None))
        return x
    start = 0
    for s, length in enumerate(spans):
        fn(x[:, start:start + length], s)
        start += length
    if start != x.shape[1]:
        raise ValueError(f"span lengths {list(spans)} do not add up to the {x.shape[1]} tokens")
    return x


class AdaLNBlock(nn.Module):
    """Pre-norm self-attention + MLP block with adaLN-zero. x ``[B, N, D]``, cond ``[B, C]``.

    ``x += gate_msa * attn(modulate(norm1(x), shift_msa, scale_msa))``;
    ``x += gate_mlp * mlp(modulate(norm2(x), shift_mlp, scale_mlp))``.
    order: how the six modulation chunks are laid out (default DiT's; FlexTok uses
    ``gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp``).
    segments: separate modulation per token group (see :class:`AdaLNModulation`).
    Norms are non-affine LayerNorms; mlp is ``"swiglu"``/``"gelu"``/``"gelu_tanh"``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, cond_dim: int | None = None,
                 segments: int = 1, order: Sequence[str] = DIT_ORDER, mlp: str = "swiglu", bias: bool = False,
                 qk_norm: bool = True, norm_eps: float = 1e-5, attn_scale: float | None = None):
        super().__init__()
        if sorted(order) != sorted(DIT_ORDER):
            raise ValueError(f"order must be a permutation of {DIT_ORDER}, got {order}")
        self.order = tuple(order)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.attn = Attention(dim, num_heads, qkv_bias=bias, proj_bias=bias, qk_norm=qk_norm,
                              qk_norm_affine=False, norm_eps=norm_eps, scale=attn_scale)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.mlp = build_mlp(mlp, dim, mlp_hidden, bias=bias)
        self.mod = AdaLNModulation(cond_dim or dim, dim, 6, segments)

    @property
    def adaLN_modulation(self) -> nn.Sequential:
        return self.mod.adaLN_modulation

    def forward(self, x: torch.Tensor, cond: torch.Tensor, segment_ids: torch.Tensor | Sequence[int] | None = None,
                mask: torch.Tensor | None = None, modulation: torch.Tensor | None = None) -> torch.Tensor:
        """segment_ids: LongTensor ``[N]`` (modulation set per token), or the lengths of consecutive
        spans (one set per span: the same values, computed span by span without gathering a
        per-token copy of the modulation; inference only). modulation: ``self.mod(cond, spans)``
        computed beforehand (e.g. once for the two guidance passes of a sampler step)."""
        if modulation is not None and isinstance(segment_ids, torch.Tensor):
            raise ValueError("a precomputed modulation goes with span lengths, not per-token segment ids")
        mod = self.mod(cond, segment_ids) if modulation is None else modulation
        if segment_ids is None or isinstance(segment_ids, torch.Tensor) or torch.is_grad_enabled():
            if segment_ids is not None and not isinstance(segment_ids, torch.Tensor):
                ids = torch.repeat_interleave(torch.arange(len(segment_ids), device=x.device),
                                              torch.as_tensor(list(segment_ids), device=x.device))
                mod = mod.index_select(1, ids)
            m = dict(zip(self.order, mod.unbind(2)))
            x = x + m["gate_msa"] * self.attn(modulate(self.norm1(x), m["shift_msa"], m["scale_msa"]), mask=mask)
            return x + m["gate_mlp"] * self.mlp(modulate(self.norm2(x), m["shift_mlp"], m["scale_mlp"]))
        m = {k: v[:, :, None] for k, v in zip(self.order, mod.unbind(2))}  # [B, S, 1, D]

        def mod_in_place(shift, scale):  # modulate() on each span of a fresh tensor
            return lambda part, s: part.mul_(1 + scale[:, s]).add_(shift[:, s])

        def gate_in_place(gate):
            return lambda part, s: part.mul_(gate[:, s])

        h = segmented(self.norm1(x), segment_ids, mod_in_place(m["shift_msa"], m["scale_msa"]))
        x = x + segmented(self.attn(h, mask=mask), segment_ids, gate_in_place(m["gate_msa"]))
        h = segmented(self.norm2(x), segment_ids, mod_in_place(m["shift_mlp"], m["scale_mlp"]))
        return x + segmented(self.mlp(h), segment_ids, gate_in_place(m["gate_mlp"]))


class AdaLNHead(nn.Module):
    """Output head: ``proj(modulate(norm(x), shift, scale))`` with ``(shift, scale)`` from cond.

    x ``[B, N, D]``, cond ``[B, C]`` -> ``[B, N, out_dim]``; norm is a non-affine LayerNorm.
    """

    def __init__(self, dim: int, out_dim: int, cond_dim: int | None = None, norm_eps: float = 1e-5,
                 bias: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.mod = AdaLNModulation(cond_dim or dim, dim, 2)
        self.proj = nn.Linear(dim, out_dim, bias=bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, modulation: torch.Tensor | None = None) -> torch.Tensor:
        shift, scale = (self.mod(cond) if modulation is None else modulation).unbind(2)
        return self.proj(modulate(self.norm(x), shift, scale))
