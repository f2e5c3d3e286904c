"""Vocos backbone: ConvNeXt blocks over frames, optionally conditioned with AdaLayerNorm.

``VocosBackbone(x [B, input_channels, F], cond_id) -> [B, F, dim]``: ``embed`` Conv1d(k=7) ->
(optional WavTokenizer ``pos_net``: 2 ResnetBlock1d, AttnBlock1d, 2 ResnetBlock1d, GroupNorm) ->
``norm`` (LayerNorm or AdaLayerNorm) -> ``convnext`` blocks -> ``final_layer_norm``.
Parameter names follow the official Vocos / WavTokenizer code so checkpoints map one to one.
Pair it with :class:`zoo.layers.istft.ISTFTHead` to get a waveform.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .inference_path import fast_inference_path
from .linear import Linear, linear

__all__ = ["AdaLayerNorm", "ConvNeXtBlock", "ResnetBlock1d", "AttnBlock1d", "VocosBackbone"]


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine weights, then per-condition ``scale`` / ``shift`` embeddings.

    x ``[B, T, dim]``; cond_id LongTensor ``[1]`` (shared by the batch) or ``[B]``.
    """

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor) -> torch.Tensor:
        if cond_id is None:
            raise ValueError("AdaLayerNorm needs a condition id (e.g. bandwidth_id)")
        scale = self.scale(cond_id).unsqueeze(-2)  # [B|1, 1, dim]
        shift = self.shift(cond_id).unsqueeze(-2)
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * scale + shift


def _norm(dim: int, num_embeddings: int | None, eps: float = 1e-6) -> nn.Module:
    return AdaLayerNorm(num_embeddings, dim, eps) if num_embeddings else nn.LayerNorm(dim, eps=eps)


class ConvNeXtBlock(nn.Module):
    """x ``[B, dim, T]`` -> same: depthwise conv k7 -> (Ada)LayerNorm -> Linear -> GELU -> Linear
    -> ``gamma`` layer scale -> residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float | None = None,
                 adanorm_num_embeddings: int | None = None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = _norm(dim, adanorm_num_embeddings)
        self.pwconv1 = Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = Linear(intermediate_dim, dim)
        if layer_scale_init_value is not None and layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))
        else:
            self.gamma = None

    def forward_time_major(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> torch.Tensor:
        """Inference on time-major x ``[B, T, dim]`` -> same (no layout transposes): the depthwise
        conv runs on the buffer viewed ``[B, dim, 1, T]`` in channels-last memory (oneDNN's
        depthwise kernel, ~8x faster than channels-first here); the same maths as :meth:`forward`."""
        w = self.dwconv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        h = F.conv2d(x.transpose(1, 2).unsqueeze(2), w, self.dwconv.bias, padding=(0, 3), groups=x.shape[-1])
        h = h.squeeze(2).transpose(1, 2)  # [B, T, dim], contiguous
        h = self.norm(h, cond_id) if isinstance(self.norm, AdaLayerNorm) else self.norm(h)
        h = self.pwconv2(self.act(self.pwconv1(h)))
        return x + h * self.gamma if self.gamma is not None else x + h

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.norm(h, cond_id) if isinstance(self.norm, AdaLayerNorm) else self.norm(h)
        h = self.pwconv2(self.act(self.pwconv1(h)))
        if self.gamma is not None:
            h = h * self.gamma
        return x + h.transpose(1, 2)


def _group_norm(dim: int) -> nn.GroupNorm:
    if dim % 32:
        raise ValueError(f"the Vocos pos_net uses GroupNorm(32 groups): dim must be a multiple of 32, got {dim}")
    return nn.GroupNorm(32, dim, eps=1e-6)


class ResnetBlock1d(nn.Module):
    """x ``[B, dim, T]`` -> same: (GroupNorm -> SiLU -> Conv1d k3) twice (dropout before the second
    conv), plus the input."""

    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = _group_norm(dim)
        self.conv1 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        self.norm2 = _group_norm(dim)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return x + h


class AttnBlock1d(nn.Module):
    """Single-head global self-attention over time with 1x1-conv projections ``q, k, v, proj_out``
    (SDPA). x ``[B, dim, T]`` -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = _group_norm(dim)
        self.q = nn.Conv1d(dim, dim, 1)
        self.k = nn.Conv1d(dim, dim, 1)
        self.v = nn.Conv1d(dim, dim, 1)
        self.proj_out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)  # [B, T, dim]: the 1x1 convs are per-frame linear maps
        q, k, v = (linear(h, m.weight[..., 0], m.bias).unsqueeze(1) for m in (self.q, self.k, self.v))
        h = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # [B, T, dim]
        return x + linear(h, self.proj_out.weight[..., 0], self.proj_out.bias).transpose(1, 2)


class VocosBackbone(nn.Module):
    """Frame features ``[B, input_channels, F]`` -> ``[B, F, dim]`` (same frame rate).

    input_channels: feature channels; dim: model width; intermediate_dim: ConvNeXt MLP width;
    num_layers: ConvNeXt blocks; layer_scale_init_value: initial ``gamma`` (default 1 / num_layers);
    adanorm_num_embeddings: number of condition ids for AdaLayerNorm (None: plain LayerNorm);
    pos_net: add WavTokenizer's resnet/attention block stack after ``embed``;
    pos_net_dropout: dropout inside its resnet blocks.
    """

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int,
                 layer_scale_init_value: float | None = None, adanorm_num_embeddings: int | None = None,
                 pos_net: bool = False, pos_net_dropout: float = 0.1):
        super().__init__()
        self.input_channels, self.dim = input_channels, dim
        self.adanorm_num_embeddings = adanorm_num_embeddings
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = _norm(dim, adanorm_num_embeddings)
        scale = layer_scale_init_value or 1.0 / num_layers
        self.convnext = nn.ModuleList([ConvNeXtBlock(dim, intermediate_dim, scale, adanorm_num_embeddings)
                                       for _ in range(num_layers)])
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(self._init_weights)
        if pos_net:
            self.pos_net = nn.Sequential(ResnetBlock1d(dim, pos_net_dropout), ResnetBlock1d(dim, pos_net_dropout),
                                         AttnBlock1d(dim), ResnetBlock1d(dim, pos_net_dropout),
                                         ResnetBlock1d(dim, pos_net_dropout), _group_norm(dim))
        else:
            self.pos_net = None

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.input_channels:
            raise ValueError(f"VocosBackbone expects [B, {self.input_channels}, F], got {tuple(x.shape)}")
        if self.adanorm_num_embeddings and cond_id is None:
            raise ValueError("this backbone is conditioned (AdaLayerNorm): pass a condition id")
        x = self.embed(x)
        if self.pos_net is not None:
            x = self.pos_net(x)
        h = x.transpose(1, 2)
        h = self.norm(h, cond_id) if isinstance(self.norm, AdaLayerNorm) else self.norm(h)
        if fast_inference_path(self):  # inference: stay time-major through the ConvNeXt stack
            h = h.contiguous()
            for block in self.convnext:
                h = block.forward_time_major(h, cond_id)
            return self.final_layer_norm(h)
        x = h.transpose(1, 2)
        for block in self.convnext:
            x = block(x, cond_id)
        return self.final_layer_norm(x.transpose(1, 2))
