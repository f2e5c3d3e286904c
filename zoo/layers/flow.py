"""Rectified-flow helpers: timestep embedding, training noise / loss, Euler sampler with CFG / APG.

Convention (FlexTok, minRF, SD3): ``t`` in [0, 1], ``t = 1`` is pure noise, ``t = 0`` data;
``x_t = t * noise + (1 - t) * x0`` and the model predicts the velocity
``v = dx_t / dt = noise - x0``. The sampler integrates from ``t = 1`` to ``t = 0`` with
``steps`` Euler steps at ``t_i = i / steps`` (``i = steps .. 1``): ``x <- x - v / steps``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["timestep_embedding", "TimestepEmbedder", "sample_timesteps", "rf_noise", "rf_loss",
           "cfg_combine", "APGState", "apg_combine", "euler_sample"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0, time_scale: float = 1.0,
                       cos_first: bool = True) -> torch.Tensor:
    """t ``[B]`` (any reals) -> ``[B, dim]`` sinusoidal features (float32).

    ``freq_k = time_scale * exp(-ln(max_period) * k / (dim // 2))``; features
    ``[cos(t f), sin(t f)]`` (``cos_first``, DiT/GLIDE order) or ``[sin, cos]``; zero-padded
    when ``dim`` is odd.
    """
    half = dim // 2
    freqs = time_scale * torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs.to(t.device)[None]
    parts = [args.cos(), args.sin()] if cos_first else [args.sin(), args.cos()]
    emb = torch.cat(parts, dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedder(nn.Module):
    """t ``[B]`` -> ``[B, dim]``: sinusoidal features, then ``Linear -> SiLU -> Linear`` (``mlp.0``/``mlp.2``).

    freq_dim: size of the sinusoidal features; max_period / time_scale: see
    :func:`timestep_embedding` (FlexTok: max_period 256, time_scale 1000 / max_timestep).
    """

    def __init__(self, dim: int, freq_dim: int = 256, max_period: float = 10000.0, time_scale: float = 1000.0):
        super().__init__()
        self.freq_dim, self.max_period, self.time_scale = freq_dim, max_period, time_scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.freq_dim, self.max_period, self.time_scale)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


# --------------------------------------------------------------------------- training
def sample_timesteps(n: int, mode: str = "logit_normal", *, device=None, generator: torch.Generator | None = None,
                     mean: float = 0.0, std: float = 1.0, mode_scale: float = 0.0) -> torch.Tensor:
    """``[n]`` training times in (0, 1).

    mode: ``"logit_normal"`` (``sigmoid(N(mean, std^2))``, SD3), ``"logit_normal_stratified"``
    (one normal quantile per stratum), ``"uniform"``, or ``"mode"`` (SD3 mode sampling with
    ``mode_scale``).
    """
    if mode == "logit_normal":
        z = torch.randn(n, generator=generator, device=device) * std + mean
        return torch.sigmoid(z)
    if mode == "logit_normal_stratified":
        u = (torch.arange(n, device=device) + torch.rand(n, generator=generator, device=device)) / n
        z = torch.erfinv(2 * u - 1) * math.sqrt(2) * std + mean
        return torch.sigmoid(z)
    u = torch.rand(n, generator=generator, device=device)
    if mode == "uniform":
        return u
    if mode == "mode":
        return 1 - u - mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
    raise ValueError(f"unknown timestep sampling mode {mode!r} (logit_normal, logit_normal_stratified, uniform, mode)")


def rf_noise(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 ``[B, ...]``, t ``[B]`` -> (x_t, noise) with ``x_t = t * noise + (1 - t) * x0``."""
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    tt = t.view(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)
    return tt * noise + (1 - tt) * x0, noise


def rf_loss(v_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the predicted velocity and ``noise - x0``."""
    return F.mse_loss(v_pred.float(), (noise - x0).float())


# --------------------------------------------------------------------------- guidance
def cfg_combine(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance ``v_u + scale * (v_c - v_u)``."""
    return v_uncond + scale * (v_cond - v_uncond)


class APGState:
    """Momentum buffer of adaptive projected guidance: the running average of ``v_c - v_u``."""

    def __init__(self, momentum: float = -0.5):
        self.momentum = momentum
        self.average: torch.Tensor | float = 0.0

    def update(self, diff: torch.Tensor) -> torch.Tensor:
        self.average = diff + self.momentum * self.average
        return self.average


def apg_combine(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float, state: APGState | None = None,
                eta: float = 0.0, norm_threshold: float = 2.5) -> torch.Tensor:
    """Adaptive projected guidance (arXiv 2410.02416), per sample (norms over all but dim 0).

    ``d = v_c - v_u`` (momentum-averaged when ``state`` is given), clipped to L2 norm
    ``norm_threshold``, split (in float64) into parts parallel / orthogonal to ``v_c``;
    returns ``v_c + (scale - 1) * (d_orth + eta * d_par)``.
    """
    diff = v_cond - v_uncond
    if state is not None:
        diff = state.update(diff)
    dims = tuple(range(1, diff.dim()))
    if norm_threshold > 0:
        norm = diff.norm(p=2, dim=dims, keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(norm), norm_threshold / norm)
    d64, c64 = diff.double(), v_cond.double()
    unit = c64 / c64.norm(p=2, dim=dims, keepdim=True).clamp_min(1e-12)
    par = (d64 * unit).sum(dim=dims, keepdim=True) * unit
    orth = (d64 - par).to(diff.dtype)
    par = par.to(diff.dtype)
    return v_cond + (scale - 1) * (orth + eta * par)


# --------------------------------------------------------------------------- sampler
VelocityFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def euler_sample(velocity: VelocityFn, noise: torch.Tensor, steps: int, guidance: float | Callable = 1.0,
                 apg: bool = False, apg_momentum: float = -0.5, apg_eta: float = 0.0,
                 apg_norm_threshold: float = 2.5, batch_cfg: bool = True) -> torch.Tensor:
    """Integrate the flow from ``x = noise`` (t = 1) to t = 0 and return the final state.

    velocity: ``velocity(x [B', ...], t [B'], uncond [B'] bool) -> v [B', ...]`` where
        ``uncond`` (a CPU tensor) marks the unconditional (null-condition) rows; with guidance the sampler
        calls it on ``2B`` rows (conditional first) when ``batch_cfg``, else twice.
    guidance: CFG scale (float, or a function of t); 1 disables the unconditional pass.
    apg: adaptive projected guidance instead of plain CFG (momentum buffer kept across steps).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    x = noise
    b = x.shape[0]
    dt = 1.0 / steps
    state = APGState(apg_momentum) if apg else None
    cond_flags = torch.zeros(b, dtype=torch.bool)  # on the CPU: velocity functions can read it without a device sync
    for i in range(steps, 0, -1):
        t_val = i / steps
        t = torch.full((b,), t_val, device=x.device, dtype=torch.float32)
        scale = guidance(t_val) if callable(guidance) else guidance
        if scale == 1.0 and not callable(guidance):
            v = velocity(x, t, cond_flags)
        else:
            if batch_cfg:
                v_both = velocity(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond_flags, ~cond_flags]))
                v_c, v_u = v_both[:b], v_both[b:]
            else:
                v_c, v_u = velocity(x, t, cond_flags), velocity(x, t, ~cond_flags)
            if apg:
                v = apg_combine(v_c, v_u, scale, state, eta=apg_eta, norm_threshold=apg_norm_threshold)
            else:
                v = cfg_combine(v_c, v_u, scale)
        x = x - dt * v
    return x
