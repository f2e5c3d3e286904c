"""TiTok's linear transform path (``linear_path=True``) and its PCA initialisation
(zoo/models/titok_linear_path.py, zoo/train/pca_init.py), on real photos."""
from __future__ import annotations

import pytest
import torch

from zoo import Tokens
from zoo.models.titok import TiTok
from zoo.train.pca_init import pca_init_linear_path_, principal_directions

LEVELS = [16, 8, 8]


def tiny(**kw) -> TiTok:
    args = dict(image_size=32, enc_patch_size=8, dec_patch_size=8, enc_size=None, dec_size=None, enc_width=64,
                enc_depth=1, dec_width=64, dec_depth=1, num_tokens=16, codebook_dim=len(LEVELS), quantizer="fsq",
                fsq_levels=LEVELS, legacy_readout=False, decoder_head="pixel", linear_path=True)
    args.update(kw)
    torch.manual_seed(0)
    return TiTok(**args)


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    """400 random 32x32 crops of 8 real photos (mate-backgrounds) at 96x96: ``[400, 3, 32, 32]``."""
    from zoo.data.offline import photos

    full = photos(96, limit=8)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(len(full), (400,), generator=gen)
    ys, xs = torch.randint(0, 65, (2, 400), generator=gen)
    return torch.stack([full[i, :, y:y + 32, x:x + 32] for i, y, x in zip(idx.tolist(), ys.tolist(), xs.tolist())])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).pow(2).mean()))


def test_zero_path_leaves_the_vit_tokenizer_unchanged(crops):
    with_path, without = tiny().eval(), tiny(linear_path=False).eval()
    missing = without.load_state_dict(with_path.state_dict(), strict=False)
    assert set(missing.unexpected_keys) == {"linear_path.encoder.weight", "linear_path.encoder.bias",
                                             "linear_path.decoder.weight", "linear_path.decoder.bias"}
    x = crops[:4]
    with torch.inference_mode():
        a, b = with_path.encode(x), without.encode(x)
        assert torch.equal(a.ids, b.ids)
        assert torch.equal(with_path.decode(a), without.decode(b))


def test_pca_init_makes_a_transform_code_that_inference_reproduces(crops):
    tok = tiny()
    train, held = crops[:300], crops[300:]
    info = pca_init_linear_path_(tok, train)
    assert info["directions"] == 16 * len(LEVELS)
    tok.eval()
    with torch.inference_mode():
        out = tok(train)  # training-mode maths in eval: no tail drop, same FSQ rounding as encode
        recon = tok.decode(tok.encode(train), clamp=False)
        # the code that the init fitted (float64 maths) is what the model computes (float32)
        assert _psnr(recon, train) == pytest.approx(info["psnr"], abs=0.05)
        assert torch.allclose(out.recon, recon, atol=1e-5)
        # the transformer outputs were zeroed: the tokenizer is exactly the linear code
        assert torch.equal(tok.encoder(train).abs().amax(), torch.tensor(0.0))
        # held-out crops: a useful code, and better than the mean image by a wide margin
        held_psnr = _psnr(tok.decode(tok.encode(held), clamp=False), held)
        mean_psnr = _psnr(train.mean(0, keepdim=True).expand_as(held), held)
    assert held_psnr > mean_psnr + 6.0


def test_token_prefixes_keep_the_strongest_directions(crops):
    tok = tiny(tail_drop=True)
    pca_init_linear_path_(tok, crops[:300])
    tok.eval()
    held = crops[300:]
    with torch.inference_mode():
        tokens = tok.encode(held)
        curve = [_psnr(tok.decode(tokens, length=n, clamp=False), held) for n in (2, 4, 8, 16)]
        assert curve == sorted(curve) and curve[-1] > curve[0] + 2.0
        # per-item prefixes (Tokens.lengths) hide the same tail tokens as decode(length=L)
        lengths = torch.tensor([4, 16] * (len(held) // 2))
        mixed = tok.decode(Tokens(ids=tokens.ids, lengths=lengths), clamp=False)
        assert torch.allclose(mixed[0::2], tok.decode(tokens.ids[0::2], length=4, clamp=False), atol=1e-5)
        assert torch.allclose(mixed[1::2], tok.decode(tokens.ids[1::2], clamp=False), atol=1e-5)


def test_principal_directions_are_orthonormal_sorted_and_sign_fixed(crops):
    mean, v, coef = principal_directions(crops, 12)
    assert torch.allclose(v @ v.T, torch.eye(12, dtype=v.dtype), atol=1e-10)
    var = coef.var(0)
    assert bool((var[:-1] >= var[1:]).all())
    assert bool((v.gather(1, v.abs().argmax(1, keepdim=True)) > 0).all())
    flipped = principal_directions(crops.flip(0), 12)[1]  # same data, other order: same directions
    assert torch.allclose(flipped, v, atol=1e-6)


def test_training_moves_the_path_and_keeps_it_differentiable(crops):
    tok = tiny()
    pca_init_linear_path_(tok, crops[:300])
    tok.train()
    out = tok(crops[:8])
    out.losses["recon_l2"].backward()
    for name in ("encoder", "decoder"):
        grad = getattr(tok.linear_path, name).weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0
    assert float(tok.encoder.conv_out.weight.grad.abs().sum()) > 0  # the zeroed ViT outputs still learn


def test_bad_configurations_and_inputs_are_refused(crops):
    with pytest.raises(ValueError, match="linear_path needs"):
        tiny(decoder_head="proxy")
    with pytest.raises(ValueError, match="linear_path needs"):
        tiny(quantizer="vae", fsq_levels=None, codebook_dim=4)
    with pytest.raises(TypeError, match="linear_path=True"):
        pca_init_linear_path_(tiny(linear_path=False), crops)
    with pytest.raises(TypeError, match="FSQ"):
        pca_init_linear_path_(tiny(quantizer="vq", fsq_levels=None, codebook_size=64), crops)
    with pytest.raises(ValueError, match="images must be"):
        pca_init_linear_path_(tiny(), crops[:, :, :16, :16])
    with pytest.raises(ValueError, match="directions"):
        pca_init_linear_path_(tiny(), crops[:20])
