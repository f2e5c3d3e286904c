"""Parity of TokenFlow's shared-mapping quantizer with the official module (../shared/golden/tokenflow)."""
import pytest
import torch

import zoo
from zoo.quant import codebook_stats
from zoo.quant.dual import MultiScaleResidualQuantizer, SharedMappingQuantizer

pytestmark = pytest.mark.golden


def _load(case):
    from tests.conftest import load_golden

    g = load_golden("tokenflow", case)
    q = zoo.load_official("tokenflow.quantizer", g.state_dict_path, g.config_path)
    return g, q


def test_single_scale_eval():
    g, q = _load("shared_mapping")
    assert isinstance(q, MultiScaleResidualQuantizer) and isinstance(q.quantizer, SharedMappingQuantizer)
    single = q.quantizer
    z = g.inputs["z"]
    assert torch.equal(torch.cat([g.inputs["z_sem"], g.inputs["z_pix"]], 1), z)
    with torch.no_grad():
        out = single(z)
        d_sem, d_pix = single.distances(z)
    assert torch.equal(out.ids.reshape(-1), g.expected["indices"])
    torch.testing.assert_close(d_sem + d_pix, g.expected["distances"], atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(out.z_q, g.expected["z_q"], atol=1e-6, rtol=0)
    z_sem, z_pix = single.split(out.z_q)
    torch.testing.assert_close(z_sem, g.expected["z_q_sem"], atol=1e-6, rtol=0)
    torch.testing.assert_close(z_pix, g.expected["z_q_pix"], atol=1e-6, rtol=0)
    torch.testing.assert_close(single.ids_to_latents(out.ids), g.expected["z_q_from_indices"], atol=1e-6, rtol=0)
    torch.testing.assert_close(out.stats["semantic_d_norm"], g.expected["vqkd_d_norm"], atol=0, rtol=1e-5)
    torch.testing.assert_close(out.stats["pixel_d_norm"], g.expected["vqgan_d_norm"], atol=0, rtol=1e-5)


def test_single_scale_train_losses():
    g, q = _load("shared_mapping")
    single = q.quantizer.train()
    out = single(g.inputs["z"])
    tol = dict(atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(out.losses["codebook"], g.expected["train_codebook_loss"], **tol)
    torch.testing.assert_close(out.losses["commitment"], g.expected["train_commit_loss"], **tol)
    assert "entropy" not in out.losses and g.expected["train_entropy_loss"].item() == 0.0
    ids = torch.cat([out.ids.reshape(-1), torch.zeros(1, dtype=torch.long)])  # fresh zero buffer counts code 0
    assert codebook_stats(ids, 64)["usage"].double().item() == g.expected["train_codebook_usage"].item()


def test_multiscale_eval():
    g, q = _load("shared_mapping_multiscale")
    assert q.scales == (1, 2, 4, 6, 8, 10, 12, 14) and q.num_tokens == 561
    z = g.inputs["z"]
    # scale by scale first (an early mismatch changes every later residual)
    residual, size = z, (14, 14)
    with torch.no_grad():
        for i, s in enumerate(q.scales):
            inp = torch.nn.functional.interpolate(residual, size=(s, s), mode="area")
            torch.testing.assert_close(inp, g.expected[f"scale{i}_s{s}_quantizer_input"], atol=1e-5, rtol=1e-5)
            o = q.quantizer(inp)
            assert torch.equal(o.ids.reshape(2, -1), g.expected[f"scale{i}_s{s}_indices"]), s
            torch.testing.assert_close(o.z_q, g.expected[f"scale{i}_s{s}_z_q"], atol=1e-6, rtol=0)
            residual = residual - torch.nn.functional.interpolate(o.z_q, size=size, mode="bicubic")
        out = q(z)
    assert torch.equal(out.ids, g.expected["indices"])
    tol = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.z_q, g.expected["z_q"], **tol)
    torch.testing.assert_close(out.z_q[:, :32], g.expected["z_q_sem"], **tol)
    torch.testing.assert_close(out.z_q[:, 32:], g.expected["z_q_pix"], **tol)
    torch.testing.assert_close(q.ids_to_latents(out.ids), g.expected["z_q_from_codes"], **tol)
    torch.testing.assert_close(out.stats["semantic_d_norm"], g.expected["eval_mean_vqkd_d_norm"], atol=0, rtol=1e-5)
    torch.testing.assert_close(out.stats["pixel_d_norm"], g.expected["eval_mean_vqgan_d_norm"], atol=0, rtol=1e-5)


def test_multiscale_train_losses():
    g, q = _load("shared_mapping_multiscale")
    q.train()
    out = q(g.inputs["z"])
    tol = dict(atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(out.losses["codebook"], g.expected["train_mean_codebook_loss"], **tol)
    torch.testing.assert_close(out.losses["commitment"], g.expected["train_mean_commit_loss"], **tol)
    # official usage: rolling buffer (fresh zeros) updated at every scale, averaged over scales
    seen, usages, start = torch.zeros(1, dtype=torch.long), [], 0
    for s in q.scales:
        seen = torch.cat([seen, out.ids[:, start:start + s * s].reshape(-1)])
        start += s * s
        usages.append(codebook_stats(seen, 64)["usage"].double())
    torch.testing.assert_close(torch.stack(usages).mean(), g.expected["train_mean_codebook_usage"], atol=1e-12, rtol=0)


def test_prefix_decode_and_errors():
    g, q = _load("shared_mapping_multiscale")
    with torch.no_grad():
        out = q(g.inputs["z"])
    prefix = q.ids_to_latents(out.ids[:, :21])  # scales 1, 2, 4
    assert prefix.shape == (2, 40, 14, 14)
    with pytest.raises(ValueError):
        q.ids_to_latents(out.ids[:, :20])
    with pytest.raises(ValueError):
        q(g.inputs["z"][:, :, :8, :8])
