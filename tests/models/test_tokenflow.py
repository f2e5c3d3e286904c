"""TokenFlow-style tokenizer: API, multi-scale ids, persistence, and a short training run on photos."""
import pytest
import torch
import torch.nn.functional as F

import zoo
from tests.models.image_training import train_on_photos
from zoo.models.tokenflow import TokenFlow


def patch_colours(x: torch.Tensor) -> torch.Tensor:
    """A fixed, weight-free patch feature network standing in for CLIP: 4x4 patches -> [B, 64, 48]."""
    return F.unfold(x, 4, stride=4).transpose(1, 2)


def test_encode_decode_and_prefix(photo_batch, tmp_path):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").eval()
    x = photo_batch[:, :, :32, :32]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (4, 1 + 4 + 16 + 36 + 64) == (4, *tok.token_shape((3, 32, 32)))
    assert tok.codebook_size == 256
    y = tok.decode(tokens)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert tok.decode(tokens.ids[:, :21]).shape == x.shape  # coarse prefix (scales 1, 2, 4)
    assert tok.decode_semantic(tokens).shape == (4, 64, 48)
    with pytest.raises(ValueError):
        tok.decode(tokens.ids[:, :20])
    with pytest.raises(ValueError):
        tok.encode(photo_batch)  # 64x64 is not the model's 32x32
    tok.save_pretrained(tmp_path)
    assert torch.equal(zoo.from_pretrained(tmp_path).encode(x).ids, tokens.ids)


def test_shared_index_drives_both_decoders(photo_batch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").eval()
    x = photo_batch[:2, :, :32, :32]
    with torch.no_grad():
        z = tok.latents(x)
        out = tok.quantizer(z)
    sem, pix = torch.split(out.z_q, [16, 8], dim=1)
    latents = tok.quantizer.ids_to_latents(out.ids)
    torch.testing.assert_close(latents[:, :16], sem, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(latents[:, 16:], pix, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        TokenFlow(image_size=32, ch_mult=[1, 2], patch_size=4, num_groups=8, ch=16, z_channels=16)


@pytest.mark.slow
def test_tiny_training_on_photos():
    """~100 steps at 32x32 on real photos: every loss finite, reconstruction and semantics improve."""
    from zoo.data.offline import photos

    torch.manual_seed(0)
    data = photos(32)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained").train()
    tok.set_teacher(patch_colours)
    first, last, out = train_on_photos(tok, data)
    assert {"recon", "codebook", "commitment", "semantic"} <= set(last)
    assert last["recon"] < 0.7 * first["recon"]
    assert last["semantic"] < first["semantic"]
    assert 0 < float(out.stats["usage_all_scales"]) <= 1 and float(out.stats["perplexity"]) >= 1


def test_separate_codebooks_dualtoken_style(photo_batch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("tokenflow_tiny.untrained", codebook_mapping="separate").eval()
    x = photo_batch[:2, :, :32, :32]
    tokens = tok.encode(x)
    assert tokens.ids.shape == (2, 121, 2) == (2, *tok.token_shape((3, 32, 32)))
    assert tok.codebook_size == (256, 256)
    assert tok.decode(tokens).shape == x.shape
    tok.train()
    out = tok(x)
    assert {"codebook_sem", "codebook_pix", "commitment_pix"} <= set(out.losses)
    assert all(torch.isfinite(v) for v in out.losses.values())
