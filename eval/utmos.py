"""UTMOS22 strong learner (naturalness MOS predictor) on torchaudio's wav2vec 2.0 Base.

Architecture (Saeki et al., 2022, "UTMOS", strong learner without the phoneme encoder):
wav2vec 2.0 Base features ``[B, F, 768]`` (16 kHz, 20 ms frames) concatenated with a fixed
data-domain embedding (domain 0, 128-d) and a fixed listener embedding (judge 288, 128-d),
a BLSTM (1024 -> 2x512), a frame-wise projection ``Linear(1024, 2048) - ReLU - Linear(2048, 1)``
and ``score = 3 + 2 * mean_over_frames``. The score is not clipped to [1, 5].

Released checkpoints load in two layouts (see :func:`convert_utmos_state_dict`):
- tarepan/SpeechMOS ``utmos22_strong_step7459_v1.pt`` (``wav2vec2.*``, ``domain_emb``,
  ``judge_emb``, ``blstm.*``, ``projection.*``);
- utmos-pytorch / UTMOS22 Lightning (``feature_extractors.0.ssl_model.*``,
  ``feature_extractors.1.embedding.weight``, ``output_layers.0.judge_embedding.weight``,
  ``output_layers.0.decoder_rnn.*``, ``output_layers.1.net.*``), optionally wrapped in
  ``{"state_dict": ...}``.
The transformer depth is read from the state dict (the released model has 12 layers).

Batch semantics: the official model has no padding mask, so zero-padding a clip changes its
score. :meth:`UTMOS22Strong.score` therefore scores every clip on its own (with optional
``lengths`` for padded batches); ``forward`` keeps the official batched computation.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

__all__ = ["UTMOS22Strong", "convert_utmos_state_dict", "load_utmos", "UTMOS_SAMPLE_RATE",
           "UTMOS_HUB_REPO", "UTMOS_HUB_FILE", "SPEECHMOS_URL"]

UTMOS_SAMPLE_RATE = 16000
#: utmos-pytorch's converted UTMOS22 strong learner on the Hugging Face hub (no revision pinned:
#: none could be looked up offline; pass ``revision=`` to pin one)
UTMOS_HUB_REPO = "Blinorot/UTMOS-PyTorch"
UTMOS_HUB_FILE = "utmos_state_dict.pt"
#: tarepan/SpeechMOS v1.0.0 release asset (GitHub release, not the HF hub)
SPEECHMOS_URL = "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt"
#: environment variable naming a local checkpoint file (or folder holding ``utmos_state_dict.pt``)
UTMOS_ENV = "ZOO_UTMOS_WEIGHTS"

_SSL_DIM, _DOMAIN_DIM, _JUDGE_DIM, _RNN_DIM, _PROJ_DIM = 768, 128, 128, 512, 2048


def _wav2vec2_base(num_layers: int) -> nn.Module:
    """torchaudio's wav2vec 2.0 Base (group-norm extractor, post-LN encoder), dropout off."""
    from torchaudio.models import wav2vec2_model

    return wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=None, extractor_conv_bias=False,
        encoder_embed_dim=_SSL_DIM, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=128,
        encoder_pos_conv_groups=16, encoder_num_layers=num_layers, encoder_num_heads=12,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=3072, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)


class UTMOS22Strong(nn.Module):
    """UTMOS22 strong learner. ``forward(wave [B, T], sample_rate) -> score [B]`` (about 1..5).

    num_layers: wav2vec 2.0 transformer depth (12 for the released checkpoint).
    """

    def __init__(self, num_layers: int = 12):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.wav2vec2 = _wav2vec2_base(num_layers)
        self.domain_emb = nn.Parameter(torch.zeros(1, _DOMAIN_DIM), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.zeros(1, _JUDGE_DIM), requires_grad=False)
        self.blstm = nn.LSTM(_SSL_DIM + _DOMAIN_DIM + _JUDGE_DIM, _RNN_DIM, batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * _RNN_DIM, _PROJ_DIM), nn.ReLU(), nn.Linear(_PROJ_DIM, 1))

    def cnn_features(self, wave16k: Tensor) -> Tensor:
        """Conv feature encoder: ``[B, T]`` at 16 kHz -> ``[B, 512, F]`` (F = frames, stride 320)."""
        feats, _ = self.wav2vec2.feature_extractor(wave16k, None)  # [B, F, 512]
        return feats.transpose(1, 2)

    def ssl_features(self, wave16k: Tensor) -> Tensor:
        """wav2vec 2.0 output ``[B, F, 768]`` for 16 kHz audio ``[B, T]``."""
        feats, _ = self.wav2vec2.feature_extractor(wave16k, None)
        return self.wav2vec2.encoder(feats, None)

    def frame_scores(self, ssl: Tensor) -> Tensor:
        """Per-frame projection output ``[B, F, 1]`` from ``ssl`` features ``[B, F, 768]``."""
        b, f, _ = ssl.shape
        cond = torch.cat([self.domain_emb, self.judge_emb], dim=1).to(ssl.dtype)  # [1, 256]
        x = torch.cat([ssl, cond[:, None].expand(b, f, -1)], dim=2)
        return self.projection(self.blstm(x)[0])

    def forward(self, wave: Tensor, sample_rate: int = UTMOS_SAMPLE_RATE) -> Tensor:
        """Official batched computation: ``[B, T]`` (equal lengths) -> ``[B]`` scores."""
        wave = _check_wave(wave)
        if int(sample_rate) != UTMOS_SAMPLE_RATE:
            from zoo.audio import resample

            wave = resample(wave, int(sample_rate), UTMOS_SAMPLE_RATE)
        return self.frame_scores(self.ssl_features(wave)).mean(dim=1)[:, 0] * 2 + 3

    @torch.no_grad()
    def score(self, wave: Tensor, sample_rate: int = UTMOS_SAMPLE_RATE, lengths: Tensor | None = None) -> Tensor:
        """Batch-1 semantics: each clip of ``[B, T]`` scored alone (``lengths`` trims padding) -> ``[B]``."""
        wave = _check_wave(wave)
        if lengths is not None and len(lengths) != wave.shape[0]:
            raise ValueError(f"lengths must have {wave.shape[0]} entries, got {len(lengths)}")
        ends = [wave.shape[-1]] * wave.shape[0] if lengths is None else [int(n) for n in lengths]
        return torch.cat([self(wave[i: i + 1, :n], sample_rate) for i, n in enumerate(ends)])


def _check_wave(wave: Tensor) -> Tensor:
    if not isinstance(wave, Tensor) or not wave.is_floating_point():
        raise TypeError(f"UTMOS expects a float waveform tensor [B, T], got {getattr(wave, 'dtype', type(wave))}")
    if wave.dim() == 3 and wave.shape[1] == 1:
        wave = wave[:, 0]
    if wave.dim() == 1:
        wave = wave[None]
    if wave.dim() != 2:
        raise ValueError(f"UTMOS expects mono audio [B, T] or [B, 1, T], got shape {tuple(wave.shape)}")
    if wave.shape[-1] < 400:
        raise ValueError(f"UTMOS needs at least 400 samples at 16 kHz (one wav2vec2 frame), got {wave.shape[-1]}")
    return wave


# ----------------------------------------------------------------------------- conversion
_LAYER_MAP = {"self_attn.q_proj": "attention.q_proj", "self_attn.k_proj": "attention.k_proj",
              "self_attn.v_proj": "attention.v_proj", "self_attn.out_proj": "attention.out_proj",
              "self_attn_layer_norm": "layer_norm", "fc1": "feed_forward.intermediate_dense",
              "fc2": "feed_forward.output_dense", "final_layer_norm": "final_layer_norm"}
#: fairseq wav2vec2 keys that inference never uses (pre-training heads, mask embedding)
_UNUSED = re.compile(r"^(mask_emb|quantizer\.|project_q\.|final_proj\.|target_glu\.|label_embs_concat|"
                     r"project_inp\.|input_quantizer\.)")


def _w2v_key(key: str) -> str | None:
    """fairseq/SpeechMOS wav2vec2 key (without prefix) -> torchaudio key (None: drop)."""
    if _UNUSED.match(key):
        return None
    m = re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.(0|2)\.(weight|bias)", key)
    if m:
        part = "conv" if m.group(2) == "0" else "layer_norm"
        return f"feature_extractor.conv_layers.{m.group(1)}.{part}.{m.group(3)}"
    if key.startswith("layer_norm."):
        return "encoder.feature_projection." + key
    if key.startswith("post_extract_proj."):
        return "encoder.feature_projection.projection." + key.split(".", 1)[1]
    m = re.fullmatch(r"encoder\.pos_conv\.0\.(weight_g|weight_v|weight|bias)", key)
    if m:
        name = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1",
                "weight": "weight", "bias": "bias"}[m.group(1)]
        return f"encoder.transformer.pos_conv_embed.conv.{name}"
    if key.startswith("encoder.layer_norm."):
        return "encoder.transformer." + key[len("encoder."):]
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
    if m and m.group(2) in _LAYER_MAP:
        return f"encoder.transformer.layers.{m.group(1)}.{_LAYER_MAP[m.group(2)]}.{m.group(3)}"
    raise KeyError(f"unknown wav2vec2 key {key!r} in the UTMOS checkpoint")


def convert_utmos_state_dict(state_dict: Mapping[str, Tensor], domain: int = 0, judge: int = 288,
                             ) -> tuple[dict[str, Tensor], int]:
    """Released UTMOS checkpoint (SpeechMOS or utmos-pytorch/Lightning layout) -> zoo layout.

    Returns ``(state_dict, num_layers)``. Tensors are cast to float32. ``domain`` / ``judge``
    pick the embedding rows of the utmos-pytorch layout (the official inference uses 0 / 288).
    """
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]
    sd = dict(state_dict)
    if sd and all(k.startswith("model.") for k in sd):  # a wrapper module's state dict
        sd = {k[len("model."):]: v for k, v in sd.items()}
    out: dict[str, Tensor] = {}
    if any(k.startswith("feature_extractors.0.ssl_model.") for k in sd):       # utmos-pytorch / Lightning
        prefix, dom, jud = "feature_extractors.0.ssl_model.", "feature_extractors.1.embedding.weight", \
            "output_layers.0.judge_embedding.weight"
        for key in (dom, jud):
            if key not in sd:
                raise KeyError(f"UTMOS checkpoint in the utmos-pytorch layout lacks {key!r}")
        out["domain_emb"] = sd[dom][domain: domain + 1]
        out["judge_emb"] = sd[jud][judge: judge + 1]
        for k, v in sd.items():
            if k.startswith("output_layers.0.decoder_rnn."):
                out["blstm." + k[len("output_layers.0.decoder_rnn."):]] = v
            elif k.startswith("output_layers.1.net."):
                idx, rest = k[len("output_layers.1.net."):].split(".", 1)
                out[f"projection.{ {'0': 0, '3': 2}[idx] }.{rest}"] = v
            elif k.startswith(prefix):
                new = _w2v_key(k[len(prefix):])
                if new is not None:
                    out["wav2vec2." + new] = v
            elif k not in (dom, jud):
                raise KeyError(f"unexpected key {k!r} in the UTMOS checkpoint (utmos-pytorch layout)")
    elif any(k.startswith("wav2vec2.") for k in sd):                          # SpeechMOS
        for k, v in sd.items():
            if k.startswith("wav2vec2."):
                new = _w2v_key(k[len("wav2vec2."):])
                if new is not None:
                    out["wav2vec2." + new] = v
            else:
                out[k] = v
    else:
        raise KeyError("not a UTMOS22 strong checkpoint: expected 'wav2vec2.*' (SpeechMOS) or "
                       f"'feature_extractors.0.ssl_model.*' (utmos-pytorch) keys, got {sorted(sd)[:6]} ...")
    # a checkpoint saved after remove_weight_norm holds the plain weight: re-factor it as g * v / ||v||
    plain = "wav2vec2.encoder.transformer.pos_conv_embed.conv.weight"
    if plain in out:
        w = out.pop(plain)
        out[plain.replace("weight", "parametrizations.weight.original1")] = w
        out[plain.replace("weight", "parametrizations.weight.original0")] = w.norm(dim=(0, 1), keepdim=True)
    out = {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
    layers = {int(m.group(1)) for k in out if (m := re.match(r"wav2vec2\.encoder\.transformer\.layers\.(\d+)\.", k))}
    if not layers or layers != set(range(len(layers))):
        raise KeyError(f"UTMOS checkpoint transformer layers must be 0..N-1, got {sorted(layers)}")
    return out, len(layers)


def _read_checkpoint(path: Path) -> Mapping[str, Tensor]:
    from zoo.checkpoint import load_state_dict_file

    return load_state_dict_file(path)


def _utmos_file(text: str, revision: str | None) -> Path:
    """The checkpoint file named by ``hf-hub:ORG/REPO[@REVISION]`` (its ``utmos_state_dict.pt``; a
    revision in the text wins over ``revision``) or by a local file / folder path."""
    from zoo.hub import local_file
    from zoo.source import HUB_PREFIX, HubRepo, parse_source

    if text.startswith(HUB_PREFIX):
        hub = parse_source(text)
        return HubRepo(hub.repo, hub.revision or revision).file(UTMOS_HUB_FILE)
    path = Path(text).expanduser()
    return local_file(path, None if path.is_file() else UTMOS_HUB_FILE)


def load_utmos(weights: str | os.PathLike | Mapping | None = None, revision: str | None = None,
               device: str | torch.device = "cpu", domain: int = 0, judge: int = 288) -> UTMOS22Strong:
    """Build :class:`UTMOS22Strong` with released weights, in eval mode.

    weights: a state dict, a checkpoint file (``.pt``/``.ckpt`` read with ``weights_only=True``,
        or ``.safetensors``), a folder holding ``utmos_state_dict.pt``, the string ``"speechmos"``
        (tarepan/SpeechMOS release asset, downloaded once into the torch hub cache), or
        ``hf-hub:ORG/REPO[@REVISION]``, a hub repo holding ``utmos_state_dict.pt``. Default:
        ``$ZOO_UTMOS_WEIGHTS`` if set, else ``hf-hub:Blinorot/UTMOS-PyTorch`` (utmos-pytorch).
    """
    if weights is None:
        weights = os.environ.get(UTMOS_ENV) or f"hf-hub:{UTMOS_HUB_REPO}"
    if isinstance(weights, Mapping):
        sd = weights
        where = "state dict"
    elif str(weights) == "speechmos":
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(SPEECHMOS_URL).name
        if not cache.is_file():
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(SPEECHMOS_URL, str(cache), progress=False)
            except Exception as e:  # no network: say how to provide the file
                raise FileNotFoundError(f"could not download {SPEECHMOS_URL} ({e}); download it elsewhere and "
                                        f"pass its path as weights= (or set {UTMOS_ENV})") from e
        sd, where = _read_checkpoint(cache), str(cache)
    else:
        path = _utmos_file(str(weights), revision)
        sd, where = _read_checkpoint(path), str(path)
    converted, num_layers = convert_utmos_state_dict(sd, domain=domain, judge=judge)
    model = UTMOS22Strong(num_layers=num_layers)
    from zoo.checkpoint import load_state_dict_strict

    load_state_dict_strict(model, converted, source=f"UTMOS checkpoint {where}")
    return model.to(device).eval()
