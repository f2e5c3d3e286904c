"""zoo.layers.autoencoder_kl.vae_decode equals diffusers' AutoencoderKL decode (up to float rounding)."""
import pytest
import torch

from zoo.layers.autoencoder_kl import fast_decode_supported, vae_decode

diffusers = pytest.importorskip("diffusers")


def _vae(**kw):
    torch.manual_seed(0)
    cfg = dict(block_out_channels=[16, 32, 32], down_block_types=["DownEncoderBlock2D"] * 3,
               up_block_types=["UpDecoderBlock2D"] * 3, latent_channels=4, norm_num_groups=8, layers_per_block=1,
               sample_size=32)
    cfg.update(kw)
    vae = diffusers.AutoencoderKL(**cfg).eval()
    with torch.no_grad():  # non-trivial norms and biases so that every term matters
        for name, p in vae.decoder.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return vae


def test_fast_decode_matches_diffusers():
    vae = _vae()
    assert fast_decode_supported(vae)
    z = torch.randn(2, 4, 8, 8)
    with torch.inference_mode():
        ref = vae.decode(z).sample
        out = vae_decode(vae, z)
    assert out.shape == ref.shape == (2, 3, 32, 32)
    # the same convolutions in other summation orders (the upsamplers as 2x2 phase kernels):
    # float32 rounding of sums of ~9 * 32 terms per layer, through ~12 layers
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_with_autograd_it_is_diffusers_decode():
    vae = _vae()
    z = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        ref = vae.decode(z).sample
    with torch.enable_grad():
        out = vae_decode(vae, z)
    assert torch.equal(out, ref)


def test_unsupported_decoders_fall_back():
    vae = _vae()
    vae.decoder.up_blocks[0].upsamplers[0].use_conv = False  # plain interpolation: not covered
    assert not fast_decode_supported(vae)
    z = torch.randn(1, 4, 8, 8)
    with torch.inference_mode():
        assert torch.equal(vae_decode(vae, z), vae.decode(z).sample)
