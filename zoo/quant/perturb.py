"""Latent perturbation (RobusTok, "Robust tokenizer for autoregressive generation").

Per token, with probability ``alpha`` the code is replaced by a uniform pick among the
``delta`` codes nearest to the ENCODER OUTPUT (candidate 0 is the nearest code itself, so a
sampled token keeps its code with probability 1/delta):
``P(nearest) = 1 - alpha + alpha/delta``, ``P(each other candidate) = alpha/delta``.
Only the first ``int(B * beta)`` batch rows are perturbed. The replacement is straight-through
(gradients reach the encoder as for the clean code) and is applied AFTER the quantizer computed
its losses (they stay those of the clean codes).

It plugs into any zoo VQ-style quantizer through a forward hook (no change to state dicts):
``LatentPerturbation(alpha, delta, beta).attach(quantizer_or_tokenizer)``. A quantizer is
supported when it declares ``perturbable = True`` (:class:`~zoo.quant.base.Quantizer`) and
implements ``perturbation_space(z) -> [(query [B, ..., D], codebook [K, D]), ...]`` (one pair per
code group: queries in the space where its nearest-code search is a squared-L2 argmin),
``code_tables()`` and ``ids_to_latents``: VQ (l2 / cosine), EMA VQ, factorized and dual
codebooks, the shared-mapping quantizer, LFQ (its 2**bits sign corners) and FSQ (the integer grid
of the bounded latent) do. Hooks go on the leaf quantizers: the inner quantizer of a multi-scale
wrapper (every scale is perturbed), every layer of a residual VQ (later layers see the residual
of the perturbed code).

For evaluation (pFID): :func:`encode_perturbed` (exact definition, needs the images) and
:func:`perturb_tokens` (ids only: the token's own code is the anchor of the neighbourhood).
"""
from __future__ import annotations

from dataclasses import dataclass
import torch
import torch.nn.functional as F
from torch import nn

from .base import Quantizer, QuantizerOutput
from .vq import squared_distances

__all__ = ["LatentPerturbation", "PerturbationSchedule", "topk_candidates", "sample_candidates",
           "perturbation_space", "code_tables", "leaf_quantizers", "top_quantizers", "is_supported", "encode_perturbed",
           "perturb_tokens", "TokenPerturbation"]


# ---------------------------------------------------------------------------- core functions
def topk_candidates(query: torch.Tensor, codebook: torch.Tensor, delta: int,
                    chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """query ``[M, D]``, codebook ``[K, D]`` -> (ids ``[M, delta]`` nearest-first, squared distances).

    Distances in the expanded form the quantizers use (same ties); computed in chunks of
    ``chunk`` queries (default: ~16M distances per chunk) so that large codebooks fit in memory.
    """
    k = codebook.shape[0]
    if not 1 <= delta <= k:
        raise ValueError(f"delta must be in [1, {k}] (codebook size), got {delta}")
    chunk = chunk or max(1, min(4096, 2 ** 24 // k))
    vals, ids = [], []
    for part in query.split(chunk):
        v, i = torch.topk(squared_distances(part, codebook), delta, dim=1, largest=False, sorted=True)
        vals.append(v)
        ids.append(i)
    return torch.cat(ids), torch.cat(vals)


def sample_candidates(candidates: torch.Tensor, alpha: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """candidates ``[M, delta]`` (column 0 = nearest) -> ids ``[M]``.

    Draws ``u ~ U[0, 1)`` then ``r ~ U{0..delta-1}`` per token (in that order, as RobusTok does);
    the token takes candidate r when ``u <= alpha``, else candidate 0.
    """
    m, delta = candidates.shape
    u = torch.rand(m, device=candidates.device, generator=generator)
    r = torch.randint(0, delta, (m,), device=candidates.device, generator=generator)
    col = torch.where(u > alpha, torch.zeros_like(r), r)
    return candidates.gather(1, col[:, None]).squeeze(1)


# ---------------------------------------------------------------------------- quantizer adapters
def perturbation_space(quantizer: Quantizer, z) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The quantizer's nearest-code search as (query ``[B, ..., D]``, codebook ``[K, D]``) per group
    (``Quantizer.perturbation_space``)."""
    return quantizer.perturbation_space(z)


def code_tables(quantizer: Quantizer) -> list[torch.Tensor]:
    """Effective code tables ``[K_g, D_g]`` per group, in the space of :func:`perturbation_space`
    (``Quantizer.code_tables``)."""
    return quantizer.code_tables()


def top_quantizers(module: nn.Module) -> list[Quantizer]:
    """Zoo quantizers inside ``module`` that are not part of another zoo quantizer."""
    found: list[Quantizer] = []

    def visit(m: nn.Module) -> None:
        if isinstance(m, Quantizer):
            found.append(m)
            return
        for c in m.children():
            visit(c)

    visit(module)
    return found


def leaf_quantizers(module: nn.Module) -> list[Quantizer]:
    """Zoo quantizers inside ``module`` that do the nearest-code search themselves (multi-scale
    wrappers are replaced by their inner quantizer)."""
    found = []
    for m in module.modules():
        if isinstance(m, Quantizer) and not any(isinstance(c, Quantizer) for c in m.children()):
            found.append(m)
    return found


# ---------------------------------------------------------------------------- schedule
@dataclass(frozen=True)
class PerturbationSchedule:
    """RobusTok's annealing: ``ratio`` is 1 before ``anneal_start``,
    ``1 - (t - anneal_start) / (anneal_end - anneal_start) * end_ratio`` up to ``anneal_end`` and
    ``end_ratio`` after it (t: the epoch in RobusTok, any step counter here); then
    ``alpha_t = ratio * alpha``, ``delta_t = max(1, int(ratio * delta))``, beta fixed."""

    alpha: float
    delta: int
    beta: float = 0.1
    anneal_start: int = 0
    anneal_end: int = 0
    end_ratio: float = 0.5

    def ratio(self, t: int) -> float:
        if t < self.anneal_start:
            return 1.0
        if t > self.anneal_end:
            return self.end_ratio
        return 1.0 - (t - self.anneal_start) / max(self.anneal_end - self.anneal_start, 1) * self.end_ratio

    def at(self, t: int) -> tuple[float, int, float]:
        """(alpha, delta, beta) at step / epoch ``t``."""
        r = self.ratio(t)
        return r * self.alpha, max(1, int(r * self.delta)), self.beta


# ---------------------------------------------------------------------------- the plug-in
class LatentPerturbation:
    """RobusTok's latent perturbation as a plug-in for zoo quantizers.

    alpha: per-token sampling probability in [0, 1]; delta: candidate count (>= 1); beta: fraction
    of the batch (leading rows) perturbed. seed: seeds a private generator (None: global RNG).
    schedule: optional :class:`PerturbationSchedule`; :meth:`step` applies it.
    always: also perturb in eval mode (evaluation); by default only modules in training mode are.
    clean_first: make the quantizer's own (clean) code candidate 0 even when float ties or near-duplicate
    codes make the top-delta search rank another code first (the evaluation helpers set it, so that
    an unsampled token never changes and a token changes with probability alpha * (1 - 1/delta)).
    """

    def __init__(self, alpha: float, delta: int, beta: float = 1.0, seed: int | None = None,
                 schedule: PerturbationSchedule | None = None, always: bool = False, clean_first: bool = False):
        self.schedule, self.always, self.seed, self.clean_first = schedule, always, seed, clean_first
        self.set(alpha, delta, beta)
        self._generators: dict[torch.device, torch.Generator] = {}
        self.calls = 0

    def set(self, alpha: float, delta: int, beta: float | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if int(delta) < 1:
            raise ValueError(f"delta must be >= 1, got {delta}")
        beta = getattr(self, "beta", 1.0) if beta is None else beta
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.alpha, self.delta, self.beta = float(alpha), int(delta), float(beta)

    def step(self, t: int) -> tuple[float, int, float]:
        """Set alpha / delta / beta from the schedule at step or epoch ``t``; returns them."""
        if self.schedule is None:
            raise ValueError("no PerturbationSchedule given")
        self.set(*self.schedule.at(t))
        return self.alpha, self.delta, self.beta

    def generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        device = torch.device(device)
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    @property
    def active(self) -> bool:
        return self.alpha > 0 and self.delta > 1 and self.beta > 0

    # ----------------------------------------------------------------- generic codebook form
    def apply(self, z_e: torch.Tensor, ids: torch.Tensor, codebook: torch.Tensor, *, z_q: torch.Tensor | None = None,
              channel_dim: int = -1, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One code group. z_e: encoder output in the search space (already l2-normalised for cosine
        VQ), channels on ``channel_dim``; ids ``[B, ...]`` clean codes; codebook ``[K, D]`` effective
        codes; z_q: clean straight-through output (default: looked up). Returns (z_q', ids'), rows
        ``>= int(B * beta)`` unchanged, perturbed rows ``z_q + sg(e' - e)``."""
        q = z_e.movedim(channel_dim, -1)
        if z_q is None:
            z_q = (q + (F.embedding(ids, codebook) - q).detach()).movedim(-1, channel_dim)
        new_ids = self.perturb_ids(q, ids, codebook, generator=generator)
        delta_e = (F.embedding(new_ids, codebook) - F.embedding(ids, codebook)).detach()
        return z_q + delta_e.movedim(-1, channel_dim).to(z_q.dtype), new_ids

    def perturb_ids(self, query: torch.Tensor, ids: torch.Tensor, codebook: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """query ``[B, ..., D]``, clean ids ``[B, ...]`` -> perturbed ids (leading rows only)."""
        if generator is None:
            generator = self.generator(query.device)
        flat = query.reshape(-1, query.shape[-1]).detach()
        cands, _ = topk_candidates(flat.to(codebook.dtype), codebook.detach(), self.delta)
        if self.clean_first:
            cands = _clean_first(cands, ids.reshape(-1))
        new = sample_candidates(cands, self.alpha, generator).view(ids.shape)
        rows = torch.arange(ids.shape[0], device=ids.device) < int(ids.shape[0] * self.beta)
        return torch.where(rows.view(-1, *([1] * (ids.dim() - 1))), new, ids)

    # ----------------------------------------------------------------- quantizer hook
    def perturb_output(self, quantizer: nn.Module, z, out: QuantizerOutput) -> QuantizerOutput:
        """Perturb a quantizer's output (its losses are kept: they belong to the clean codes)."""
        space = perturbation_space(quantizer, z)
        groups = len(space)
        ids = out.ids if groups > 1 else out.ids[..., None]
        new_ids = torch.stack([self.perturb_ids(qg, ids[..., g], cb) for g, (qg, cb) in enumerate(space)], -1)
        new_ids = new_ids if groups > 1 else new_ids[..., 0]
        shift = (quantizer.ids_to_latents(new_ids) - quantizer.ids_to_latents(out.ids)).detach()
        stats = dict(out.stats)
        stats["perturbed_fraction"] = (new_ids != out.ids).float().mean().detach()
        return QuantizerOutput(out.z_q + shift.to(out.z_q.dtype), new_ids, out.losses, stats)

    def _hook(self, module, inputs, output):
        if not (self.active and (module.training or self.always)):
            return None
        self.calls += 1
        return self.perturb_output(module, inputs[0], output)

    def attach(self, module: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
        """Register on every leaf zoo quantizer inside ``module`` (a quantizer or a tokenizer).
        Returns the hook handles (``handle.remove()`` detaches)."""
        leaves = leaf_quantizers(module)
        if not leaves:
            raise TypeError(f"{type(module).__name__} contains no zoo.quant.Quantizer to perturb")
        handles = []
        for q in leaves:
            if not is_supported(q):
                raise TypeError(f"{type(q).__name__} is not supported by the latent perturbation; declare "
                                "perturbable = True and implement perturbation_space(z), code_tables() and "
                                "ids_to_latents(ids)")
            handles.append(q.register_forward_hook(self._hook))
        return handles


def _clean_first(cands: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """candidates ``[M, delta]``, clean ids ``[M]`` -> candidates with the clean id in column 0, the
    others in their order (the last one dropped when the clean id was not among them)."""
    m, delta = cands.shape
    ext = torch.cat([clean[:, None].to(cands.dtype), cands], 1)
    key = torch.arange(delta + 1, device=cands.device).expand(m, -1).clone()
    key[:, 1:].masked_fill_(cands == clean[:, None], 2 * delta + 2)  # duplicates of the clean id go last
    return ext.gather(1, key.argsort(dim=1, stable=True)[:, :delta])


def is_supported(q: nn.Module) -> bool:
    """True when ``q`` is a zoo quantizer that declares it can be perturbed (``Quantizer.perturbable``)."""
    return isinstance(q, Quantizer) and q.perturbable


class _attached:
    def __init__(self, pert: LatentPerturbation, module: nn.Module):
        self.pert, self.module = pert, module

    def __enter__(self):
        self.handles = self.pert.attach(self.module)
        return self.pert

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


# ---------------------------------------------------------------------------- evaluation helpers
def encode_perturbed(tokenizer, x: torch.Tensor, alpha: float, delta: int, seed: int = 0, beta: float = 1.0):
    """``tokenizer.encode(x)`` with RobusTok's perturbation applied to every leaf quantizer
    (candidates nearest to the encoder output, all rows when beta=1). Deterministic for a seed."""
    pert = LatentPerturbation(alpha, delta, beta, seed=seed, always=True, clean_first=True)
    with _attached(pert, tokenizer):
        tokens = tokenizer.encode(x)
    if pert.active and pert.calls == 0:
        raise RuntimeError(f"{type(tokenizer).__name__}.encode did not call a zoo quantizer's forward: "
                           "the perturbation could not be applied")
    return tokens


def perturb_tokens(tokenizer, tokens, alpha: float, delta: int, seed: int = 0, beta: float = 1.0):
    """Perturb already-encoded ``tokens`` (``zoo.Tokens`` or ids ``[B, N]`` / ``[B, N, G]``).

    Without the encoder output, the neighbourhood of a token is the ``delta`` codes nearest to
    its own code (candidate 0 is the token itself); sampling is as in training. Returns
    ``zoo.Tokens`` with the same ``lengths`` / ``input_shape`` / extras and perturbed ids.
    The tokenizer must hold exactly one top-level zoo quantizer that implements ``code_tables()``
    (VQ, factorized, shared-mapping incl. multi-scale, residual, LFQ, FSQ); its groups (factorized
    branches, RVQ layers) are the trailing id dim.
    """
    from ..api import Tokens

    tokens = tokens if isinstance(tokens, Tokens) else Tokens(ids=tokens)
    tops = top_quantizers(tokenizer)
    if len(tops) != 1:
        raise TypeError(f"perturb_tokens needs exactly one zoo quantizer in {type(tokenizer).__name__}, "
                        f"found {len(tops)}; use encode_perturbed")
    tables = code_tables(tops[0])
    pert = LatentPerturbation(alpha, delta, beta, seed=seed, clean_first=True)
    ids = tokens.ids
    grouped = ids if ids.dim() == 3 else ids[..., None]
    if grouped.shape[-1] != len(tables):
        raise ValueError(f"ids have {grouped.shape[-1]} groups but the quantizer has {len(tables)} codebooks")
    with torch.no_grad():
        new = []
        for g, table in enumerate(tables):
            table = table.to(ids.device)
            gid = grouped[..., g]
            if int(gid.min()) < 0 or int(gid.max()) >= table.shape[0]:
                raise ValueError(f"ids of group {g} outside [0, {table.shape[0]})")
            new.append(pert.perturb_ids(F.embedding(gid, table), gid, table))
    new_ids = torch.stack(new, -1) if ids.dim() == 3 else new[0]
    return Tokens(ids=new_ids, lengths=tokens.lengths, num_samples=tokens.num_samples,
                  input_shape=tokens.input_shape, extras=dict(tokens.extras))


# ---------------------------------------------------------------------------- tokenizer level
class TokenPerturbation:
    """How the latent perturbation applies to one tokenizer's tokens (``Tokenizer.token_perturbation()``).

    This default perturbs the ids of the tokenizer's zoo quantizers (:func:`encode_perturbed` /
    :func:`perturb_tokens`); a tokenizer whose ids come from elsewhere (dMel's fixed scalar bins)
    returns its own subclass.
    """

    def __init__(self, tokenizer: nn.Module):
        self.tokenizer = tokenizer

    def unsupported_reason(self) -> str | None:
        """None when :meth:`tokens` works for this tokenizer, else why not."""
        leaves = leaf_quantizers(self.tokenizer)
        if not leaves:
            return f"{type(self.tokenizer).__name__} has no zoo quantizer (not a VQ tokenizer)"
        bad = [type(q).__name__ for q in leaves if not is_supported(q)]
        if bad:
            return f"quantizer(s) {bad} have no nearest-code search to perturb (pFID needs VQ codebooks)"
        return None

    def definition(self) -> str:
        """What one perturbed token is (for evaluation protocols)."""
        kinds = sorted({type(q).__name__ for q in leaf_quantizers(self.tokenizer)})
        return f"each id of the tokenizer's quantizer(s) {kinds} (per code group)"

    def tokens(self, x: torch.Tensor, alpha: float, delta: int, seed: int, mode: str = "encoder"):
        """``encode(x)`` with each token, with probability ``alpha``, re-drawn among the ``delta`` codes
        nearest to the encoder output (mode ``"encoder"``) or to its own code (``"tokens"``)."""
        if mode == "encoder":
            return encode_perturbed(self.tokenizer, x, alpha=alpha, delta=delta, seed=seed)
        return perturb_tokens(self.tokenizer, self.tokenizer.encode(x), alpha=alpha, delta=delta, seed=seed)
