"""Waveform discriminators of neural audio codecs (HiFi-GAN / UnivNet / Vocos / EnCodec).

Every discriminator maps a waveform ``[B, T]`` (or ``[B, 1, T]``) to ``(logits, features)``:
``logits`` a list with one ``[B, N_i]`` tensor per sub-discriminator, ``features`` a list (per
sub-discriminator) of lists of intermediate feature maps. Feed them to
:mod:`zoo.losses.gan` (``discriminator_loss`` / ``generator_loss`` / ``feature_matching_loss``),
calling the discriminator once on real and once on (detached, for the D step) generated audio.

- :class:`MultiPeriodDiscriminator` (HiFi-GAN MPD): waveform folded into ``[T/p, p]`` for p in
  2, 3, 5, 7, 11, strided 2-D convs along time.
- :class:`MultiResolutionDiscriminator` (UnivNet MRD): 2-D convs on magnitude STFTs at three
  resolutions (rectangular window, as in Vocos / WavTokenizer).
- :class:`MultiScaleSTFTDiscriminator` (EnCodec MS-STFT): dilated 2-D convs on the real and
  imaginary parts of window-normalised complex STFTs.
- :class:`AudioDiscriminators`: any combination of the three, outputs concatenated.

MPD and MRD optionally take a condition id (WavTokenizer's bandwidth id): a learnt embedding
(zero-initialised) is projected onto the last feature map and added to the logits.
All convolutions use weight normalisation (``torch.nn.utils.parametrizations.weight_norm``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["DiscriminatorP", "MultiPeriodDiscriminator", "DiscriminatorR", "MultiResolutionDiscriminator",
           "DiscriminatorSTFT", "MultiScaleSTFTDiscriminator", "AudioDiscriminators", "clamped_hinge_generator_loss"]

Output = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def _mono(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"discriminators take mono waveforms [B, T] or [B, 1, T], got {tuple(x.shape)}")
    return x


def _conditioned(logit_map: torch.Tensor, last: torch.Tensor, emb: nn.Embedding | None,
                 cond_id: torch.Tensor | None) -> torch.Tensor:
    """Add the projection of the last features on the condition embedding to the logits."""
    if emb is None or cond_id is None:
        return logit_map
    e = emb(cond_id.reshape(-1)).reshape(-1, last.shape[1], 1, 1)  # [1|B, C, 1, 1]
    return logit_map + (e * last).sum(dim=1, keepdim=True)


class DiscriminatorP(nn.Module):
    """Period-``period`` sub-discriminator. x ``[B, T]`` -> (logits ``[B, N]``, features)."""

    def __init__(self, period: int, channels: Sequence[int] = (32, 128, 512, 1024, 1024), kernel_size: int = 5,
                 stride: int = 3, lrelu_slope: float = 0.1, num_embeddings: int | None = None):
        super().__init__()
        self.period, self.lrelu_slope = period, lrelu_slope
        chans = [1, *channels]
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1),
                                  padding=(kernel_size // 2, 0)))
            for i in range(len(channels))])
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))
        self.emb = None
        if num_embeddings is not None:
            self.emb = nn.Embedding(num_embeddings, chans[-1])
            nn.init.zeros_(self.emb.weight)

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        x = _mono(x)[:, None]
        b, c, t = x.shape
        if t % self.period:
            pad = self.period - t % self.period
            x = F.pad(x, (0, pad), mode="reflect" if t > pad else "constant")
            t += pad
        x = x.view(b, c, t // self.period, self.period)
        features = []
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), self.lrelu_slope)
            if i > 0:
                features.append(x)
        out = self.conv_post(x)
        features.append(out)
        return _conditioned(out, x, self.emb, cond_id).flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN multi-period discriminator (one :class:`DiscriminatorP` per period)."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), num_embeddings: int | None = None,
                 channels: Sequence[int] = (32, 128, 512, 1024, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorP(p, channels, num_embeddings=num_embeddings)
                                             for p in periods])

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> Output:
        outs = [d(x, cond_id) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class DiscriminatorR(nn.Module):
    """Magnitude-STFT sub-discriminator at ``resolution = (n_fft, hop, win)``."""

    def __init__(self, resolution: Sequence[int], channels: int = 64, lrelu_slope: float = 0.1,
                 num_embeddings: int | None = None):
        super().__init__()
        self.resolution = tuple(int(r) for r in resolution)
        self.lrelu_slope = lrelu_slope
        specs = [(1, (7, 5), (2, 2), (3, 2)), (channels, (5, 3), (2, 1), (2, 1)), (channels, (5, 3), (2, 2), (2, 1)),
                 (channels, (3, 3), (2, 1), (1, 1)), (channels, (3, 3), (2, 2), (1, 1))]
        self.convs = nn.ModuleList([weight_norm(nn.Conv2d(cin, channels, k, s, padding=p)) for cin, k, s, p in specs])
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))
        self.emb = None
        if num_embeddings is not None:
            self.emb = nn.Embedding(num_embeddings, channels)
            nn.init.zeros_(self.emb.weight)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` -> magnitude ``[B, n_fft // 2 + 1, frames]`` (rectangular window, centred frames)."""
        n_fft, hop, win = self.resolution
        window = torch.ones(win, device=x.device)
        return torch.stft(x.float(), n_fft, hop, win, window=window, center=True, return_complex=True).abs()

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        h = self.spectrogram(_mono(x))[:, None]
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.lrelu_slope)
            features.append(h)
        out = self.conv_post(h)
        features.append(out)
        return _conditioned(out, h, self.emb, cond_id).flatten(1), features


class MultiResolutionDiscriminator(nn.Module):
    """UnivNet multi-resolution discriminator (one :class:`DiscriminatorR` per resolution)."""

    def __init__(self, resolutions: Sequence[Sequence[int]] = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)),
                 num_embeddings: int | None = None, channels: int = 64):
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorR(r, channels, num_embeddings=num_embeddings)
                                             for r in resolutions])

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> Output:
        outs = [d(x, cond_id) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class DiscriminatorSTFT(nn.Module):
    """EnCodec STFT sub-discriminator on ``[real, imag]`` of a window-normalised complex STFT."""

    def __init__(self, filters: int = 32, n_fft: int = 1024, hop_length: int = 256, win_length: int = 1024,
                 max_filters: int = 1024, filters_scale: int = 1, kernel_size: tuple[int, int] = (3, 9),
                 dilations: Sequence[int] = (1, 2, 4), stride: tuple[int, int] = (1, 2), lrelu_slope: float = 0.2):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.lrelu_slope = lrelu_slope
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

        def pad(k, d=(1, 1)):
            return ((k[0] - 1) * d[0] // 2, (k[1] - 1) * d[1] // 2)

        convs = [nn.Conv2d(2, filters, kernel_size, padding=pad(kernel_size))]  # no weight norm, as EnCodec
        cin = min(filters_scale * filters, max_filters)
        for i, d in enumerate(dilations):
            cout = min(filters_scale ** (i + 1) * filters, max_filters)
            convs.append(weight_norm(nn.Conv2d(cin, cout, kernel_size, stride, dilation=(d, 1),
                                               padding=pad(kernel_size, (d, 1)))))
            cin = cout
        cout = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
        square = (kernel_size[0], kernel_size[0])
        convs.append(weight_norm(nn.Conv2d(cin, cout, square, padding=pad(square))))
        self.convs = nn.ModuleList(convs)
        self.conv_post = weight_norm(nn.Conv2d(cout, 1, square, padding=pad(square)))

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        x = _mono(x).float()
        spec = torch.stft(x, self.n_fft, self.hop_length, self.win_length, self.window, center=False,
                          return_complex=True) / self.window.square().sum().sqrt()
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freqs]
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.lrelu_slope)
            features.append(h)
        return self.conv_post(h).flatten(1), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec MS-STFT discriminator (one :class:`DiscriminatorSTFT` per scale)."""

    def __init__(self, filters: int = 32, n_ffts: Sequence[int] = (1024, 2048, 512),
                 hop_lengths: Sequence[int] = (256, 512, 128), win_lengths: Sequence[int] = (1024, 2048, 512),
                 **kwargs):
        super().__init__()
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError("n_ffts, hop_lengths and win_lengths must have the same length")
        self.discriminators = nn.ModuleList([DiscriminatorSTFT(filters, n, h, w, **kwargs)
                                             for n, h, w in zip(n_ffts, hop_lengths, win_lengths)])

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> Output:
        outs = [d(x) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class AudioDiscriminators(nn.Module):
    """The chosen discriminators run on the same waveform; logits and features concatenated.

    kinds: any of "mpd", "mrd", "msstft"; num_embeddings: condition ids for MPD / MRD;
    kwargs_<kind>: constructor overrides, e.g. ``mpd={"channels": (8, 16, 32, 32, 32)}``.
    """

    def __init__(self, kinds: Sequence[str] = ("mpd", "mrd", "msstft"), num_embeddings: int | None = None,
                 mpd: dict | None = None, mrd: dict | None = None, msstft: dict | None = None):
        super().__init__()
        unknown = set(kinds) - {"mpd", "mrd", "msstft"}
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of mpd, mrd, msstft; got {list(kinds)}")
        self.discs = nn.ModuleDict()
        if "mpd" in kinds:
            self.discs["mpd"] = MultiPeriodDiscriminator(num_embeddings=num_embeddings, **(mpd or {}))
        if "mrd" in kinds:
            self.discs["mrd"] = MultiResolutionDiscriminator(num_embeddings=num_embeddings, **(mrd or {}))
        if "msstft" in kinds:
            self.discs["msstft"] = MultiScaleSTFTDiscriminator(**(msstft or {}))

    def forward(self, x: torch.Tensor, cond_id: torch.Tensor | None = None) -> Output:
        logits, features = [], []
        for disc in self.discs.values():
            lg, ft = disc(x, cond_id)
            logits += lg
            features += ft
        return logits, features


def clamped_hinge_generator_loss(fake: Sequence[torch.Tensor]) -> torch.Tensor:
    """Generator hinge of HiFi-GAN-style vocoders (Vocos, WavTokenizer): ``sum_i mean(relu(1 - D_i(G)))``.

    (:func:`zoo.losses.gan.generator_loss` with "hinge" is the unclamped ``-mean(D(G))``.)"""
    return sum(F.relu(1.0 - f.float()).mean() for f in fake)
