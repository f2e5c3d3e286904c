"""pFID on real photos with the zoo's tiny VQ tokenizers (untrained, seeded)."""
from __future__ import annotations

import pytest
import torch

from eval.fid import FID, InceptionFeatures
from eval.pfid import decode_kwargs, effective_delta, perturbed_reconstruction, pfid_label, pfid_protocol, supports_pfid


def _tiny_image_tokenizers() -> list[str]:
    import zoo

    names = [n for n in zoo.list_tokenizers(modality="image") if "tiny" in n]
    if not names:
        pytest.skip("no tiny image tokenizer is registered")
    # flow decoders (FlexTok) take ~15 s on CPU
    return [pytest.param(n, marks=pytest.mark.slow) if "flextok" in n else n for n in names]


@pytest.fixture(scope="module")
def net64():
    torch.manual_seed(0)
    net = InceptionFeatures(weights=False, feature="64")
    for name, buf in net.named_buffers():
        if name.endswith("running_var"):
            buf.fill_(0.02)
    return net


@pytest.mark.parametrize("name", _tiny_image_tokenizers())
def test_perturbation_on_every_tiny_vq_tokenizer(name):
    import zoo
    from zoo.data.offline import photos

    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name).eval()
    ok, why = supports_pfid(tok)
    if not ok:  # e.g. FSQ (FlexTok): no learned codebook to take neighbours in; must say so
        from zoo.quant.perturb import leaf_quantizers
        from zoo.quant.vq import VectorQuantizer

        assert "VQ" in why and not any(isinstance(q, VectorQuantizer) for q in leaf_quantizers(tok))
        return
    x = photos(zoo.get_info(name).input_size[-1], limit=2)
    clean = tok.reconstruct(x, **decode_kwargs(tok, 0)).clamp(0, 1)
    # alpha = 0 keeps every nearest code: the clean reconstruction
    torch.testing.assert_close(perturbed_reconstruction(tok, x, 0.0, 8, seed=0, **decode_kwargs(tok, 0)), clean)
    delta = effective_delta(tok, 16)
    a = perturbed_reconstruction(tok, x, 1.0, delta, seed=0, **decode_kwargs(tok, 0))
    b = perturbed_reconstruction(tok, x, 1.0, delta, seed=0, **decode_kwargs(tok, 0))
    c = perturbed_reconstruction(tok, x, 1.0, delta, seed=1, **decode_kwargs(tok, 0))
    torch.testing.assert_close(a, b)                     # reproducible for a seed
    assert a.shape == c.shape == clean.shape
    # the codes do change (an untrained decoder may ignore them, e.g. adaLN-zero init)
    from zoo.quant.perturb import encode_perturbed, perturb_tokens

    ids = tok.encode(x).ids
    assert (encode_perturbed(tok, x, 1.0, delta, seed=0).ids != ids).any()
    assert (perturb_tokens(tok, ids, 1.0, delta, seed=0).ids != ids).any()


def test_pfid_on_photos(net64):
    import zoo
    from zoo.data.offline import photos

    name = "titok_tiny.untrained"
    if name not in zoo.list_tokenizers():
        pytest.skip(f"{name} is not registered")
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name).eval()
    x = photos(zoo.get_info(name).input_size[-1], limit=12)
    rfid, pfid0, pfid1 = (FID(net64) for _ in range(3))
    for i in range(0, 12, 4):
        xb = x[i:i + 4]
        real = rfid.features(xb)
        for m in (rfid, pfid0, pfid1):
            m.update_features(real, real=True)
        rfid.update(tok.reconstruct(xb).clamp(0, 1), real=False)
        pfid0.update(perturbed_reconstruction(tok, xb, 0.0, 32, seed=i), real=False)
        pfid1.update(perturbed_reconstruction(tok, xb, 1.0, 32, seed=i), real=False)
    r, p0, p1 = rfid.compute().item(), pfid0.compute().item(), pfid1.compute().item()
    assert p0 == pytest.approx(r, rel=1e-6)            # no perturbation -> rFID
    # untrained decoders barely depend on the codes, but the perturbation must show
    assert p1 > 0 and abs(p1 - r) > 1e-6 * r
    assert pfid_label(0.5, 100, 3) == "pFID(alpha=0.5, delta=100, seed=3)"
    proto = pfid_protocol(0.5, 100, 3)
    assert (proto["alpha"], proto["delta"], proto["seed"]) == (0.5, 100, 3)


def test_pfid_rejects_continuous_and_bad_params():
    import zoo

    tok = zoo.create_tokenizer("titok_tiny.untrained").eval()
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="alpha"):
        perturbed_reconstruction(tok, x, 1.5, 4, seed=0)
    with pytest.raises(ValueError, match="mode"):
        perturbed_reconstruction(tok, x, 0.5, 4, seed=0, mode="latent")
    # a continuous (VAE) TiTok has no codebook to take neighbours in: refused with a reason
    vae = zoo.create_tokenizer("titok_tiny.untrained", quantizer="vae", codebook_size=None)
    ok, why = supports_pfid(vae)
    assert not ok and "VQ" in why
