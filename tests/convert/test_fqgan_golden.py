"""Parity of the FQGAN factorized quantizer with the official module (../shared/golden/fqgan)."""
import pytest
import torch

import zoo
from zoo.quant import codebook_stats

pytestmark = pytest.mark.golden

CASES = {"dual": ("vis", "sem"), "triple": ("vis", "sem_mid", "sem_high")}


def _load(case):
    from tests.conftest import load_golden

    g = load_golden("fqgan", case)
    q = zoo.load_official("fqgan.quantizer", g.state_dict_path, g.config_path)
    return g, q


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_outputs(case):
    g, q = _load(case)
    names = CASES[case]
    assert q.names == names
    zs = [g.inputs[f"z_{n}"] for n in names]
    with torch.no_grad():
        out = q(zs)
    b, _, h, w = zs[0].shape
    assert out.ids.shape == (b, h, w, len(names))
    for i, n in enumerate(names):
        assert torch.equal(out.ids[..., i].reshape(-1), g.expected[f"indices_{n}"]), n
        z_q = q.split(out.z_q)[i]
        torch.testing.assert_close(z_q, g.expected[f"z_q_{n}"], atol=1e-6, rtol=0)
        branch = q.ids_to_branches(out.ids)[i]
        torch.testing.assert_close(branch, g.expected[f"z_q_{n}_from_indices"], atol=1e-6, rtol=0)
    torch.testing.assert_close(out.z_q, g.expected["quant"], atol=1e-6, rtol=0)
    torch.testing.assert_close(q.ids_to_latents(out.ids), g.expected["quant_from_indices"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_losses(case):
    g, q = _load(case)
    names = CASES[case]
    q.train()
    out = q([g.inputs[f"z_{n}"] for n in names])
    tol = dict(atol=1e-7, rtol=1e-5)
    for i, n in enumerate(names):
        torch.testing.assert_close(out.losses[f"codebook_{n}"], g.expected[f"train_codebook_loss_{n}"], **tol)
        torch.testing.assert_close(out.losses[f"commitment_{n}"], g.expected[f"train_commit_loss_{n}"], **tol)
        torch.testing.assert_close(out.losses[f"entropy_{n}"], g.expected[f"train_entropy_loss_{n}"], **tol)
        # official usage: distinct codes in a fresh all-zero rolling buffer (so code 0 counts) / K
        ids = torch.cat([out.ids[..., i].reshape(-1), torch.zeros(1, dtype=torch.long)])
        usage = codebook_stats(ids, q.codebook_size[i])["usage"].double()
        assert usage.item() == g.expected[f"train_codebook_usage_{n}"].item()
    torch.testing.assert_close(out.losses["disentangle"], g.expected["disentangle_loss"], **tol)
    loss = out.loss
    assert torch.isfinite(loss)


def test_triple_pairwise_terms():
    from zoo.losses.disentangle import squared_cosine

    g, q = _load("triple")
    with torch.no_grad():
        out = q([g.inputs[f"z_{n}"] for n in CASES["triple"]])
    vis, mid, high = q.split(out.z_q)
    tol = dict(atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(0.1 * squared_cosine(vis, mid), g.expected["disentangle_loss_vis_sem_mid"], **tol)
    torch.testing.assert_close(0.1 * squared_cosine(vis, high), g.expected["disentangle_loss_vis_sem_high"], **tol)
    torch.testing.assert_close(0.1 * squared_cosine(mid, high), g.expected["disentangle_loss_sem_mid_sem_high"], **tol)


def test_quantizer_rejects_bad_input():
    g, q = _load("dual")
    with pytest.raises(TypeError):
        q(g.inputs["z_vis"])
    with pytest.raises(ValueError):
        q([g.inputs["z_vis"], g.inputs["z_sem"][:, :4]])
