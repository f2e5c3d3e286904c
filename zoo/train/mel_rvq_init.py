"""Data-dependent start of a :class:`zoo.models.mel_rvq.MelRVQ` codec (a recipe ``model.setup``).

Why: the codec's codebooks live in log-mel space, so they can start where plain residual VQ of
log-mel frames is already a working code. A fresh model's first training batch (hundreds of
vectors for 1024 codes per level) would make a poor k-means; this fits every level by k-means on
the frames of hundreds of training utterances, level by level on the residual the previous levels
leave, and starts the vocoder from a trained dMel vocoder (same front end, same architecture).
"""
from __future__ import annotations

import torch
from torch import nn

from ..quant.ema_vq import kmeans
from ..quant.vq import nearest_code_chunked

__all__ = ["training_mel_groups", "kmeans_init_mel_rvq_"]


@torch.no_grad()
def training_mel_groups(model, utterances: int | None = None, peak: float = 0.95, seed: int = 0) -> torch.Tensor:
    """Log-mel frame groups ``[M, stack * n_mels]`` of ``utterances`` (None: all) seeded, peak-normalised
    training utterances of ``zoo.data.offline.speech_split()`` (each utterance grouped on its own)."""
    from ..data.offline import load_speech, speech_split
    from ..data.transforms import peak_normalize

    train, _ = speech_split()
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(int(seed))).tolist()
    groups = []
    for i in order:
        try:
            wave = load_speech(train[i], model.sample_rate)
        except ValueError:  # empty file
            continue
        if wave.numel() <= model.mel.n_fft // 2:
            continue
        log_mel = model.mel.log_mel(peak_normalize(wave, peak)[None].to(model.device))
        groups.append(model.group_frames(log_mel)[0].t())
        if len(groups) == utterances:
            break
    if not groups:
        raise ValueError("no usable training utterance found")
    return torch.cat(groups)


@torch.no_grad()
def kmeans_init_mel_rvq_(model, utterances: int | None = None, kmeans_iters: int = 20, seed: int = 0,
                         vocoder: str | None = "dmel_vocos_demo.demo") -> dict:
    """Fit the codebooks of ``model`` (a fresh MelRVQ) by residual k-means on training log-mel groups
    (:func:`training_mel_groups` of ``utterances`` utterances, all by default)
    and (``vocoder``: a registry name of a dMel tokenizer with trained Vocos weights, or None) copy
    that vocoder in.

    With ``code_dim`` set, the affine maps to / from the codes start as the projection on the top
    ``code_dim`` principal directions of the groups (SVD in float64) and its transpose, plus the mean.

    Returns ``{"vectors": M, "explained_variance": share of the group variance those directions keep
    (1.0 without a projection), "level_mse": [mean squared code-space residual after each level]}``.
    """
    import zoo

    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    groups = training_mel_groups(model, utterances, seed=seed).float()
    explained = 1.0
    if isinstance(model.to_codes, nn.Conv1d):  # codes = coordinates on the top code_dim principal directions
        mean = groups.mean(dim=0)
        _, s, vh = torch.linalg.svd((groups - mean).double(), full_matrices=False)
        basis = vh[: model.code_dim].float()  # [code_dim, D], orthonormal rows
        explained = float(s[: model.code_dim].square().sum() / s.square().sum())
        model.to_codes.weight.copy_(basis[:, :, None])
        model.to_codes.bias.copy_(-(basis @ mean))
        model.from_codes.weight.copy_(basis.t()[:, :, None])
        model.from_codes.bias.copy_(mean)
        groups = (groups - mean) @ basis.t()
    residual = groups
    level_mse = []
    for level in model.quantizer.layers:
        means, _ = kmeans(residual, level.codebook_size, kmeans_iters, generator=generator,
                          assign=nearest_code_chunked)
        level.embedding.weight.copy_(means)
        residual = residual - means[nearest_code_chunked(residual, means)]
        level_mse.append(float(residual.square().mean()))
    if vocoder is not None:
        source = zoo.create_tokenizer(vocoder, pretrained=True)
        if getattr(source, "vocos", None) is None:
            raise ValueError(f"{vocoder} has no Vocos vocoder to start from")
        model.mel.vocos.load_state_dict(source.vocos.state_dict(), strict=True)
    return {"vectors": int(residual.shape[0]), "explained_variance": explained, "level_mse": level_mse}
