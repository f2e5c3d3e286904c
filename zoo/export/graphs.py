"""What an exported encoder / decoder computes, per family: plain tensor-in, tensor-out modules.

``EncoderGraph(tok)``: signal -> ids; ``DecoderGraph(tok)``: ids -> signal. They run the same
modules as ``tok.encode`` / ``tok.decode`` without the Python-side checks (range, sample rate,
ids within the codebook) and without shape bookkeeping that would fix the traced length:
- TiTok / One-D-Piece: images ``[B, 3, S, S]`` in [0, 1] -> ids ``[B, N]`` -> images (clamped).
- WavTokenizer: audio ``[B, T]`` -> ids ``[B, ceil(T / hop)]`` -> audio ``[B, F * hop]`` (not
  trimmed: keep the first T samples, as ``decode`` does with ``Tokens.num_samples``).
- dMel: audio ``[B, T]`` -> ids ``[B, T // hop + 1, n_mels]`` (the float32 STFT path, with
  ``bucketize`` written as a count of the thresholds below each value: identical ids by
  definition) -> audio ``[B, (F - 1) * hop]`` through the Vocos vocoder.
- Mel residual VQ: audio ``[B, T]`` -> ids ``[B, ceil(F / stack), Q]`` (dMel's float32 log-mel path)
  -> audio ``[B, (N * stack - 1) * hop]`` from all Q codebooks, whole groups of frames as ``decode``
  without ``Tokens.num_samples`` (keep the first T samples).
"""
from __future__ import annotations

import torch
from torch import nn

from ..api import Tokens
from ..models.dmel import _POWER_FLOOR

__all__ = ["EncoderGraph", "DecoderGraph", "export_family", "ExportError", "EXPORTABLE_FAMILIES"]


class ExportError(ValueError):
    """The tokenizer (or this configuration of it) has no exported form."""


#: tokenizer class name -> export family
_FAMILY_OF_CLASS = {"TiTok": "titok", "WavTokenizer": "wavtokenizer", "DMel": "dmel", "MelRVQ": "mel_rvq"}
#: registry families whose tokenizers export (One-D-Piece shares TiTok's class)
EXPORTABLE_FAMILIES = ("titok", "onedpiece", "wavtokenizer", "dmel", "mel_rvq")


def export_family(tok) -> str:
    """Export family of ``tok`` ("titok" | "wavtokenizer" | "dmel"); ``ExportError`` names the supported ones."""
    family = _FAMILY_OF_CLASS.get(type(tok).__name__)
    if family is None:
        raise ExportError(f"ONNX export supports {', '.join(EXPORTABLE_FAMILIES)} (TiTok / One-D-Piece, "
                          f"WavTokenizer, dMel and mel residual-VQ tokenizers, demo ones included), "
                          f"not {type(tok).__name__}")
    if family == "titok" and tok.quantize is None:
        raise ExportError("this TiTok is continuous (VAE): its latents are not ids; ONNX export covers the "
                          "discrete (VQ / FSQ) TiTok and One-D-Piece tokenizers")
    return family


def _titok_ids(tok, x: torch.Tensor) -> torch.Tensor:
    return tok._encode(x).ids


def _titok_pixels(tok, ids: torch.Tensor) -> torch.Tensor:
    return tok._decode(Tokens(ids=ids))


def _wavtokenizer_ids(tok, x: torch.Tensor) -> torch.Tensor:
    return tok.quantizer(tok.encoder(x.unsqueeze(1))).ids


def _wavtokenizer_audio(tok, ids: torch.Tensor) -> torch.Tensor:
    return tok._waveform(tok.quantizer.ids_to_latents(ids), tok._bandwidth_id(None, ids.shape[0]))


def _dmel_log_mel(tok, x: torch.Tensor) -> torch.Tensor:
    """The float32 path of ``DMel._log_mel_fp32`` in exportable ops: the power spectrum out of place
    (``re^2 + im^2``, the same arithmetic), one matmul with the used rows of the filterbank."""
    spec = torch.stft(x.float(), tok.n_fft, tok.hop_length, tok.win_length, tok.window, center=True,
                      pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    first, last = tok._bins
    parts = torch.view_as_real(spec[:, first:last]).square()
    mag = (parts[..., 0] + parts[..., 1]).clamp_min(_POWER_FLOOR).sqrt()  # [B, used bins, F]
    mel = torch.matmul(mag.transpose(1, 2), tok.fbank[first:last])  # [B, F, n_mels]
    return mel.clamp_min(tok.mel_floor).log10()


def _dmel_ids(tok, x: torch.Tensor) -> torch.Tensor:
    # bucketize(right=True) is the number of thresholds <= the value
    return (_dmel_log_mel(tok, x).unsqueeze(-1) >= tok.thresholds).sum(-1)


def _dmel_audio(tok, ids: torch.Tensor) -> torch.Tensor:
    return tok.vocode(tok.dequantize(ids), None, vocoder="vocos")


def _mel_rvq_ids(tok, x: torch.Tensor) -> torch.Tensor:
    return tok.search_ids(_dmel_log_mel(tok.mel, x))


def _mel_rvq_audio(tok, ids: torch.Tensor) -> torch.Tensor:
    return tok._decode(Tokens(ids=ids))


_ENCODERS = {"titok": _titok_ids, "wavtokenizer": _wavtokenizer_ids, "dmel": _dmel_ids, "mel_rvq": _mel_rvq_ids}
_DECODERS = {"titok": _titok_pixels, "wavtokenizer": _wavtokenizer_audio, "dmel": _dmel_audio,
             "mel_rvq": _mel_rvq_audio}


class EncoderGraph(nn.Module):
    """signal -> ids ``int64`` (see the module docstring for shapes)."""

    def __init__(self, tok):
        super().__init__()
        self.tok, self.family = tok, export_family(tok)
        if self.family == "mel_rvq" and tok.searches_jointly:
            tok.search_tables()  # weight-only tables (a QR): computed here, constants of the graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ENCODERS[self.family](self.tok, x)


class DecoderGraph(nn.Module):
    """ids ``int64`` -> signal float32 clamped to ``input_range``, as ``tok.decode`` returns it by default
    (see the module docstring for shapes)."""

    def __init__(self, tok):
        super().__init__()
        self.tok, self.family = tok, export_family(tok)
        if self.family == "dmel" and tok.vocos is None:
            raise ExportError("this dMel decodes with Griffin-Lim (iterative, random initial phases), which has no "
                              "exported form: export its encoder alone (parts=('encoder',), CLI --parts encoder) or "
                              "use a dMel with a Vocos vocoder (dmel_vocos_*)")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return _DECODERS[self.family](self.tok, ids).clamp(*self.tok.input_range)
