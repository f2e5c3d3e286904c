"""Data-dependent init of a WavTokenizer encoder's output (recipe ``model.setup``), with
:func:`zoo.train.lsuv.lsuv_init_` on real training speech.

Why: at initialisation the small SEANet encoder's output is almost constant over time (per-channel
temporal std ~1e-3 against offsets ~3e-2): k-means then places the codebook on noise, all frames
fall into a handful of codes and the codec never leaves that collapse (perplexity ~2 after 150 steps
in our runs). Rescaling every encoder convolution in turn so that its output has zero mean and unit
variance per channel on a few training clips (LSUV, data-dependent initialisation) gives the
quantizer real, time-varying latents from the first step. (Rescaling only the last layer made it
amplify every upstream update ~1000x and the latents exploded.) Only the initial values of the
convs' ``weight_g`` and ``bias`` change; the architecture and the state dict keys do not.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["standardize_encoder_output"]


@torch.no_grad()
def standardize_encoder_output(model: nn.Module, clips: int = 16, seconds: float = 1.0, peak: float = 0.95,
                               seed: int = 0) -> None:
    """LSUV-style init of every ``WNConv1d`` of ``model.encoder``, in forward order: its output gets
    zero mean and unit variance per channel on ``clips`` training utterances of
    ``zoo.data.offline.speech_split()`` (centre ``seconds`` crops). Rescaling every layer (rather
    than only the last one) keeps each layer's gain ~1, so no layer amplifies the updates of the
    layers before it."""
    from zoo.data.offline import load_speech, speech_split
    from zoo.data.transforms import center_segment, peak_normalize
    from zoo.layers.seanet import WNConv1d
    from zoo.train.lsuv import lsuv_init_

    convs = [m for m in model.encoder.modules() if isinstance(m, WNConv1d)]
    if not convs:
        raise TypeError("standardize_encoder_output needs an encoder made of WNConv1d layers")
    train, _ = speech_split()
    gen = torch.Generator().manual_seed(int(seed))
    rate, n = int(model.sample_rate), int(round(seconds * model.sample_rate))
    batch = []
    for i in torch.randperm(len(train), generator=gen).tolist():
        try:
            wave = load_speech(train[i], rate)
        except ValueError:  # empty file
            continue
        batch.append(center_segment(peak_normalize(wave, peak), n))
        if len(batch) == clips:
            break
    x = torch.stack(batch)[:, None]
    was_training = model.training
    model.eval()
    lsuv_init_(convs, lambda: model.encoder(x))  # modules() yields the convs in forward order
    model.train(was_training)
