"""FlexTok (arXiv 2502.13967): images -> ordered 1D sequences of 1..256 FSQ tokens.

Pipeline: image [0, 1] -> [-1, 1] -> stage-0 VAE (``diffusers.AutoencoderKL``, f8, 16 channels,
latent mean times ``vae_scaling_factor``) -> :class:`FlexTokEncoder` (2x2 patches + registers,
causal-last mask) -> FSQ [8, 8, 8, 5, 5, 5] (64,000 codes) -> ids ``[B, 256]``.
Decoding keeps the first ``k`` tokens, conditions the rectified-flow :class:`FlexTokDecoder`
on them and integrates the flow from noise with Euler steps (CFG or APG guidance), then
decodes the latent with the VAE.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Tokenizer, TokenizerOutput, Tokens
from ..layers.autoencoder_kl import vae_decode
from ..layers.flow import euler_sample, rf_loss, rf_noise, sample_timesteps
from ..quant.fsq import FSQ
from .flextok_decoder import FlexTokDecoder
from .flextok_encoder import FlexTokEncoder

__all__ = ["FlexTok", "VAE_SDXL_LIKE", "sample_keep_k"]

#: diffusers AutoencoderKL config of FlexTok's stage-0 VAEs (latent_channels set per model)
VAE_SDXL_LIKE: dict[str, Any] = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 16, "layers_per_block": 2,
    "norm_num_groups": 32, "sample_size": 1024,
}


def sample_keep_k(batch: int, n: int, mode: str = "uniform", device=None,
                  generator: torch.Generator | None = None) -> torch.LongTensor:
    """Nested-dropout lengths ``[batch]`` in 1..n.

    mode: ``"uniform"`` (k ~ U{1..n}), ``"pow2"`` (uniform over the powers of two <= n;
    n must be one) or ``"uniform_pow2"`` (uniform k rounded up to a power of two).
    """
    if mode == "uniform":
        return torch.randint(1, n + 1, (batch,), generator=generator, device=device)
    if mode == "pow2":
        if n & (n - 1):
            raise ValueError(f"pow2 nested dropout needs a power-of-two register count, got {n}")
        e = torch.randint(0, n.bit_length(), (batch,), generator=generator, device=device)
        return 2 ** e
    if mode == "uniform_pow2":
        k = torch.randint(1, n + 1, (batch,), generator=generator, device=device)
        return (2 ** torch.ceil(torch.log2(k.double()))).long()
    raise ValueError(f"unknown nested dropout mode {mode!r} (uniform, pow2, uniform_pow2)")


def _attn_scale(spec: float | str | None, head_dim: int) -> float | None:
    if spec == "mup":
        return 8.0 / head_dim
    if spec is None or isinstance(spec, (int, float)):
        return spec
    raise ValueError(f"attn_scale must be 'mup', a number or None, got {spec!r}")


class FlexTok(Tokenizer):
    """FlexTok tokenizer. ``encode``: images ``[B, 3, H, W]`` in [0, 1] -> ids ``[B, R]`` (R = 256);
    ``decode(tokens, k=..., steps=..., guidance=..., apg=..., noise=..., generator=...)``.

    image_size: default size (decode without ``input_shape`` or ``noise``); vae: diffusers
    AutoencoderKL config (None: the SDXL-like FlexTok VAE); vae_scaling_factor: latent scale
    (None: the VAE config's ``scaling_factor``); enc_* / dec_*: transformer shapes;
    pos_grid: sin-cos table size in patches (None: image_size / (8 * patch_size));
    attn_scale: ``"mup"`` (8 / head_dim, FlexTok), None (1 / sqrt(head_dim)) or a number.
    Training (``forward``): nested_dropout (uniform | pow2 | uniform_pow2), cfg_dropout
    (probability of the null condition), timestep_sampling (see ``sample_timesteps``), and
    optional REPA: decoder block ``repa_layer``'s patch tokens are projected by an MLP to
    ``teacher_dim`` and aligned (cosine) to features of a frozen network
    (:meth:`set_repa_encoder` or ``forward(x, repa_target=...)``) with weight ``repa_weight``.
    decode_*: defaults of ``decode``.
    """

    modality = "image"
    variable_length_arg = "k"
    decode_draws_noise = True  # the flow sampler starts from Gaussian noise

    def __init__(self, image_size: int = 256, vae: dict | None = None, vae_scaling_factor: float | None = None,
                 vae_sample_posterior: bool = False, latent_channels: int = 16, patch_size: int = 2,
                 pos_grid: Sequence[int] | None = None, pos_scaling: str = "absolute",
                 enc_width: int = 768, enc_depth: int = 12, enc_head_dim: int = 64, enc_mlp_hidden: int | None = None,
                 enc_head_norm: bool = True,
                 dec_width: int = 768, dec_depth: int = 12, dec_head_dim: int = 64, dec_mlp_hidden: int | None = None,
                 num_registers: int = 256, fsq_levels: Sequence[int] = (8, 8, 8, 5, 5, 5),
                 fsq_drop_quant_p: float = 0.0,
                 attn_scale: float | str | None = "mup", norm_eps: float = 1e-5, bias: bool = False,
                 adaln_segments: int = 2, null_cond: str = "learned", null_single_token: bool = False,
                 register_pos: bool = True, time_freq_dim: int = 256, time_max_period: float = 256.0,
                 max_timestep: float = 1.0, nested_dropout: str = "uniform", cfg_dropout: float = 0.1,
                 timestep_sampling: str = "logit_normal", timestep_mode_scale: float = 0.0,
                 repa_layer: int | None = None, teacher_dim: int | None = None, repa_hidden: int = 2048,
                 repa_weight: float = 1.0, decode_steps: int = 20, decode_guidance: float = 7.5,
                 decode_apg: bool = True):
        super().__init__()
        vae_cfg = dict(VAE_SDXL_LIKE if vae is None else vae)
        if vae is None:
            vae_cfg["latent_channels"] = latent_channels
        if vae_cfg.get("latent_channels", latent_channels) != latent_channels:
            raise ValueError(f"VAE latent_channels {vae_cfg['latent_channels']} != latent_channels {latent_channels}")
        from diffusers import AutoencoderKL

        clean = {k: v for k, v in vae_cfg.items() if not k.startswith("_")}
        self.vae = AutoencoderKL.from_config(clean)
        self.vae.requires_grad_(False)
        self.vae_scale = float(vae_scaling_factor if vae_scaling_factor is not None
                               else (vae_cfg.get("scaling_factor") or 1.0))
        self.vae_sample_posterior = vae_sample_posterior
        self.downsample = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
        self.image_size, self.patch_size, self.latent_channels = image_size, patch_size, latent_channels
        self.num_registers = num_registers
        if pos_grid is None:
            g = image_size // (self.downsample * patch_size)
            pos_grid = (g, g)
        pos_grid = tuple(int(v) for v in pos_grid)
        self.pos_grid, self.pos_scaling = pos_grid, pos_scaling
        self.quantizer = FSQ(fsq_levels, channel_dim=-1, drop_quant_p=fsq_drop_quant_p)
        common = dict(latent_channels=latent_channels, num_registers=num_registers, token_dim=len(fsq_levels),
                      patch_size=patch_size, pos_grid=pos_grid, pos_scaling=pos_scaling, norm_eps=norm_eps, bias=bias)
        self.encoder = FlexTokEncoder(dim=enc_width, depth=enc_depth, head_dim=enc_head_dim, mlp_hidden=enc_mlp_hidden,
                                      attn_scale=_attn_scale(attn_scale, enc_head_dim), head_norm=enc_head_norm,
                                      **common)
        self.decoder = FlexTokDecoder(dim=dec_width, depth=dec_depth, head_dim=dec_head_dim, mlp_hidden=dec_mlp_hidden,
                                      attn_scale=_attn_scale(attn_scale, dec_head_dim), adaln_segments=adaln_segments,
                                      null_cond=null_cond, null_single_token=null_single_token,
                                      register_pos=register_pos, time_freq_dim=time_freq_dim,
                                      time_max_period=time_max_period, time_scale=1000.0 / max_timestep, **common)
        self.nested_dropout, self.cfg_dropout = nested_dropout, cfg_dropout
        self.timestep_sampling, self.timestep_mode_scale = timestep_sampling, timestep_mode_scale
        self.repa_layer, self.repa_weight = repa_layer, repa_weight
        self.repa_proj = None
        if repa_layer is not None:
            if teacher_dim is None or not 0 <= repa_layer < dec_depth:
                raise ValueError(f"REPA needs teacher_dim and 0 <= repa_layer < dec_depth ({dec_depth}); "
                                 f"got repa_layer={repa_layer}, teacher_dim={teacher_dim}")
            self.repa_proj = nn.Sequential(nn.Linear(dec_width, repa_hidden), nn.SiLU(),
                                           nn.Linear(repa_hidden, repa_hidden), nn.SiLU(),
                                           nn.Linear(repa_hidden, teacher_dim))
        self._repa_encoder: Callable | None = None
        self.decode_defaults = {"steps": decode_steps, "guidance": decode_guidance, "apg": decode_apg}

    # ----------------------------------------------------------------- properties
    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    @property
    def input_multiple(self) -> int | None:
        """Other sizes: sides divisible by VAE factor x patch; None with absolute positions (at most
        ``input_size``: the protocol then resizes to it)."""
        return None if self.pos_scaling == "absolute" else self.downsample * self.patch_size

    def token_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.num_registers,)

    def set_attention_backend(self, backend: str) -> "FlexTok":
        """``"sdpa"`` (default: SDPA with a materialised mask) or ``"flex"`` (flex-attention block
        mask for the encoder's causal-last mask; needs torch >= 2.5, compiled on CUDA)."""
        if backend not in ("sdpa", "flex"):
            raise ValueError(f"attention backend must be 'sdpa' or 'flex', got {backend!r}")
        self.encoder.attn_backend = backend
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # the stage-0 VAE is frozen
        return self

    # ----------------------------------------------------------------- VAE
    def _check_size(self, h: int, w: int) -> None:
        m = self.downsample * self.patch_size
        if h % m or w % m:
            raise ValueError(f"FlexTok needs image sides divisible by {m} (VAE f{self.downsample} x patch "
                             f"{self.patch_size}), got {h}x{w}")
        if self.pos_scaling == "absolute" and (h // m > self.pos_grid[0] or w // m > self.pos_grid[1]):
            raise ValueError(f"image {h}x{w} is larger than this model supports "
                             f"({self.pos_grid[0] * m}x{self.pos_grid[1] * m})")

    def vae_encode(self, x: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """images ``[B, 3, H, W]`` in [0, 1] -> scaled latents ``[B, C, H/8, W/8]`` (posterior
        mode, or a sample when ``sample``)."""
        dist = self.vae.encode(x * 2 - 1).latent_dist
        return (dist.sample() if sample else dist.mode()) * self.vae_scale

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """scaled latents -> images in [-1, 1] (not clamped)."""
        return vae_decode(self.vae, latents / self.vae_scale)

    # ----------------------------------------------------------------- encode
    def _encode(self, x: torch.Tensor) -> Tokens:
        h, w = x.shape[-2:]
        self._check_size(h, w)
        q = self.quantizer(self.encoder(self.vae_encode(x)))
        return Tokens(ids=q.ids, input_shape=(h, w))

    # ----------------------------------------------------------------- decode
    def _keep_k(self, tokens: Tokens, k, b: int) -> torch.Tensor:
        n = tokens.ids.shape[1]
        if k is None:
            k = tokens.lengths if tokens.lengths is not None else n
        k = torch.as_tensor(k, device=self.device)
        if k.is_floating_point() or k.dtype == torch.bool:
            raise TypeError(f"k must be an int or an integer tensor, got {k.dtype}")
        k = k.long().expand(b) if k.dim() == 0 else k.long()
        if k.shape != (b,):
            raise ValueError(f"k must be an int or a [B]={b} tensor, got shape {tuple(k.shape)}")
        if bool((k < 1).any()) or bool((k > n).any()):
            raise ValueError(f"k must be in 1..{n} (the number of given tokens), got {k.tolist()}")
        return k

    def _noise(self, tokens: Tokens, b: int, noise, generator) -> torch.Tensor:
        if noise is not None:
            if noise.dim() != 4 or noise.shape[:2] != (b, self.latent_channels):
                raise ValueError(f"noise must be [B={b}, {self.latent_channels}, h, w] (VAE-latent shape), "
                                 f"got {tuple(noise.shape)}")
            self._check_size(noise.shape[2] * self.downsample, noise.shape[3] * self.downsample)
            return noise.to(self.device, torch.float32)
        h, w = tokens.input_shape[-2:] if tokens.input_shape else (self.image_size, self.image_size)
        self._check_size(h, w)
        shape = (1, self.latent_channels, h // self.downsample, w // self.downsample)
        gen_device = generator.device if generator is not None else self.device
        # one draw per image, as the official sampler does, so seeds give the same noise
        return torch.cat([torch.randn(shape, generator=generator, device=gen_device) for _ in range(b)]).to(self.device)

    def decode_latents(self, tokens: Tokens | torch.Tensor, k=None, steps: int | None = None,
                       guidance: float | Callable | None = None, apg: bool | None = None,
                       noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample the VAE latent ``[B, C, h, w]`` (the sampler's state at t = 0) for ``tokens``.

        k: number of leading tokens to keep (int or ``[B]``; default: ``tokens.lengths`` or all
        given tokens); steps / guidance / apg: Euler steps, CFG scale (1 = off), adaptive
        projected guidance; noise: the state at t = 1 (else drawn from ``generator``).
        Runs with autograd enabled unless called under ``torch.inference_mode()`` (as ``decode`` does).
        """
        tokens = self._as_tokens(tokens)  # checks the ids against the codebook
        ids = tokens.ids
        b, n = ids.shape[:2]
        if ids.dim() != 2 or n > self.num_registers or n < 1:
            raise ValueError(f"FlexTok ids must be [B, n] with 1 <= n <= {self.num_registers}, got {tuple(ids.shape)}")
        steps = self.decode_defaults["steps"] if steps is None else steps
        guidance = self.decode_defaults["guidance"] if guidance is None else guidance
        apg = self.decode_defaults["apg"] if apg is None else apg
        keep_k = self._keep_k(tokens, k, b)
        codes = self.quantizer.ids_to_codes(F.pad(ids, (0, self.num_registers - n)))
        x = self._noise(tokens, b, noise, generator)

        keep_k_host = keep_k.cpu()  # lets the decoder size its sequence without a device sync per step

        shared: dict = {}

        def velocity(x_t, t, uncond):
            reps = x_t.shape[0] // b
            if not torch.is_grad_enabled() and shared.get("t") is not t:  # the guidance passes of a step
                shared.clear()                                            # share t: modulate once
                shared.update(self.decoder.time_conditioning(t.to(x_t.device)), t=t)
            return self.decoder(x_t, t, codes.repeat(reps, 1, 1), keep_k_host.repeat(reps), uncond,
                                time_cond=shared or None)

        # in inference the decoder collapses copied registers (see FlexTokDecoder.collapse_registers):
        # the unconditional pass is then about half as long as the conditional one, so the two run
        # separately instead of as one padded batch
        return euler_sample(velocity, x, steps, guidance=guidance, apg=apg, batch_cfg=torch.is_grad_enabled())

    def _decode(self, tokens: Tokens, k=None, steps: int | None = None, guidance: float | Callable | None = None,
                apg: bool | None = None, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` on the [0, 1] scale (unclamped). k: keep the first k tokens (int
        or per-row ``[B]``); steps / guidance / apg: Euler sampler settings (defaults from the
        config); noise or generator: the initial noise, for reproducible decodes."""
        lat = self.decode_latents(tokens, k=k, steps=steps, guidance=guidance, apg=apg, noise=noise,
                                  generator=generator)
        return (self.vae_decode(lat) + 1) / 2

    # ----------------------------------------------------------------- training
    def set_repa_encoder(self, fn: Callable[[torch.Tensor], torch.Tensor] | None) -> None:
        """Frozen feature network for REPA: images ``[B, 3, H, W]`` in [0, 1] -> ``[B, N, F]`` or
        ``[B, F, h, w]``. Kept outside the module tree (not saved, not trained)."""
        self._repa_encoder = fn

    def _repa_loss(self, hidden: torch.Tensor, target: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        if target.dim() == 3:  # [B, N, F] -> [B, F, s, s]
            s = int(round(target.shape[1] ** 0.5))
            if s * s != target.shape[1]:
                raise ValueError(f"REPA features [B, N, F] need a square token grid, got N={target.shape[1]}")
            target = target.transpose(1, 2).reshape(target.shape[0], -1, s, s)
        if tuple(target.shape[-2:]) != grid:
            target = F.interpolate(target.float(), size=grid, mode="bilinear", align_corners=False)
        target = target.flatten(2).transpose(1, 2)
        pred = self.repa_proj(hidden)
        return 1 - F.cosine_similarity(pred.float(), target.float().detach(), dim=-1).mean()

    def forward(self, x: torch.Tensor, repa_target: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> TokenizerOutput:
        """Training step on images ``[B, 3, H, W]`` in [0, 1].

        losses: ``flow`` (rectified-flow MSE on the velocity) and, with REPA, ``repa``
        (weighted ``1 - cos``). recon: the one-step estimate of the clean VAE latent
        ``x_t - t v``; extras: ``latents`` (target), ``keep_k``, ``t``, ``uncond``.
        """
        x = self.validate_input(x)
        h, w = x.shape[-2:]
        self._check_size(h, w)
        with torch.no_grad():
            latents = self.vae_encode(x, sample=self.vae_sample_posterior)
        q = self.quantizer(self.encoder(latents))
        b, dev = x.shape[0], x.device
        keep_k = sample_keep_k(b, self.num_registers, self.nested_dropout, device=dev, generator=generator)
        uncond = torch.rand(b, device=dev, generator=generator) < self.cfg_dropout
        t = sample_timesteps(b, self.timestep_sampling, device=dev, generator=generator,
                             mode_scale=self.timestep_mode_scale)
        x_t, noise = rf_noise(latents, t, generator=generator)
        out = self.decoder(x_t, t, q.z_q, keep_k, uncond, hidden_layer=self.repa_layer)
        v, hidden = out if self.repa_layer is not None else (out, None)
        losses = {"flow": rf_loss(v, latents, noise)}
        if self.repa_proj is not None:
            target = repa_target
            if target is None and self._repa_encoder is not None:
                with torch.no_grad():
                    target = self._repa_encoder(x)
            if target is None:
                raise ValueError("REPA is enabled (repa_layer set): pass repa_target= or call set_repa_encoder()")
            grid = (latents.shape[2] // self.patch_size, latents.shape[3] // self.patch_size)
            losses["repa"] = self.repa_weight * self._repa_loss(hidden, target, grid)
        recon = x_t - t.view(-1, 1, 1, 1) * v
        stats = {**q.stats, "keep_k_mean": keep_k.float().mean(), "t_mean": t.mean()}
        return TokenizerOutput(recon=recon, tokens=Tokens(ids=q.ids, lengths=keep_k, input_shape=(h, w)),
                               losses=losses, stats=stats,
                               extras={"latents": latents, "keep_k": keep_k, "t": t, "uncond": uncond, "velocity": v})
