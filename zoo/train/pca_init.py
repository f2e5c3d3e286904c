"""PCA initialisation of a TiTok :class:`~zoo.models.titok_linear_path.LinearTransformPath`
(data-dependent init, like :mod:`zoo.train.lsuv`).

Given training images ``[n, 3, S, S]`` and an FSQ TiTok with ``linear_path=True``:

1. principal directions of the centred images (SVD, float64; each direction's sign fixed so that its
   largest entry is positive, which makes the init the same on every CPU up to rounding);
2. the N * D quantizer slots are filled coarse to fine: the channels sorted by their number of
   levels (most first) form bands of N slots, and rank ``r = band * N + t`` goes to token t of that
   band, so token 0 holds the strongest direction of every band and a token prefix keeps the
   strongest ones (One-D-Piece tail drop);
3. per direction, the encoder gain ``g`` (latent = g * coefficient / std, then FSQ's tanh bound and
   rounding) is picked on a grid to minimise the squared error after the least-squares affine
   read-out ``coefficient ~ a * code + b`` that becomes the decoder's column;
4. the ViT's output layers (encoder ``conv_out``, decoder pixel ``ffn``, the 3x3 ``conv_out`` bias)
   are zeroed, so the initialised tokenizer is exactly that transform code and training starts from it.
"""
from __future__ import annotations

import torch

__all__ = ["pca_init_linear_path_", "principal_directions"]

GAIN_GRID = torch.linspace(0.05, 2.0, 40)


def principal_directions(images: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``images`` ``[n, ...]`` -> (mean ``[d]``, directions ``[k, d]`` orthonormal, coefficients ``[n, k]``),
    all float64, directions sign-fixed (largest entry positive)."""
    x = images.flatten(1).double()
    if x.shape[0] < 2 or k > min(x.shape):
        raise ValueError(f"need at least max(2, {k}) images of at least {k} values for {k} directions, "
                         f"got {tuple(images.shape)}")
    mean = x.mean(0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    v = vh[:k]
    sign = torch.sign(v.gather(1, v.abs().argmax(1, keepdim=True)))
    v = v * sign
    return mean, v, (x - mean) @ v.T


def _fit_band(coef: torch.Tensor, level: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coefficients ``[n, m]`` -> per column (gain/std, a, b, mse) of the best grid gain for one FSQ level."""
    from zoo.quant import FSQ

    fsq = FSQ([level]).double()
    std = coef.std(0).clamp_min(1e-12)
    best = None
    for g in GAIN_GRID.tolist():
        code = fsq.quantize(g * coef / std).double()  # FSQ([L]) on [..., 1]: treat columns as a batch
        code = code.reshape_as(coef)
        cm, ym = code.mean(0), coef.mean(0)
        var = (code - cm).pow(2).mean(0)
        a = torch.where(var > 0, ((code - cm) * (coef - ym)).mean(0) / var.clamp_min(1e-30), torch.zeros_like(var))
        b = ym - a * cm
        mse = (a * code + b - coef).pow(2).mean(0)
        if best is None:
            best = [torch.full_like(std, g) / std, a, b, mse]
        else:
            better = mse < best[3]
            for i, new in enumerate((g / std, a, b, mse)):
                best[i] = torch.where(better, new, best[i])
    return tuple(best)


@torch.no_grad()
def pca_init_linear_path_(model, images: torch.Tensor, zero_transformer_outputs: bool = True) -> dict:
    """Initialise ``model.linear_path`` (an FSQ TiTok) from ``images`` ``[n, 3, S, S]`` in [0, 1]
    (see the module docstring); returns ``{"psnr": float, "directions": int}``, the PSNR of the
    quantized linear code on those images."""
    from zoo.quant import FSQ

    path = getattr(model, "linear_path", None)
    if path is None:
        raise TypeError("pca_init_linear_path_ needs a TiTok built with linear_path=True")
    if not isinstance(model.quantize, FSQ):
        raise TypeError(f"pca_init_linear_path_ needs an FSQ quantizer, got {type(model.quantize).__name__}")
    if tuple(images.shape[1:]) != path.image_shape:
        raise ValueError(f"images must be [n, {', '.join(map(str, path.image_shape))}], got {tuple(images.shape)}")
    n_tok, levels = path.num_tokens, list(model.quantize.levels)
    channels = sorted(range(len(levels)), key=lambda c: -levels[c])  # stable: ties keep channel order
    mean, v, coef = principal_directions(images, n_tok * len(levels))
    enc = torch.zeros(n_tok, len(levels), v.shape[1], dtype=torch.float64)
    enc_bias = torch.zeros(n_tok, len(levels), dtype=torch.float64)
    dec = torch.zeros(v.shape[1], n_tok, len(levels), dtype=torch.float64)
    dec_bias = mean.clone()
    recon = torch.zeros_like(coef)
    for band, c in enumerate(channels):
        ranks = slice(band * n_tok, (band + 1) * n_tok)
        scale, a, b, _ = _fit_band(coef[:, ranks], levels[c])
        enc[:, c] = scale[:, None] * v[ranks]
        enc_bias[:, c] = -scale * (v[ranks] @ mean)
        dec[:, :, c] = (a[:, None] * v[ranks]).T
        dec_bias += b @ v[ranks]
        code = FSQ([levels[c]]).double().quantize(scale * coef[:, ranks]).reshape(-1, n_tok)
        recon[:, ranks] = a * code + b
    path.encoder.set_matrix(enc.reshape(-1, v.shape[1]).float(), enc_bias.reshape(-1).float())
    path.decoder.set_matrix(dec.reshape(v.shape[1], -1).float(), dec_bias.float())
    if zero_transformer_outputs:
        for layer in (model.encoder.conv_out, model.decoder.ffn[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        model.decoder.conv_out.bias.zero_()
    x = images.flatten(1).double()
    mse = (recon @ v + mean - x).pow(2).mean()  # quantized code, before clamping to [0, 1]
    return {"psnr": float(-10 * torch.log10(mse)), "directions": int(v.shape[0])}
