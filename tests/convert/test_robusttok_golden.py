"""RobusTok latent perturbation vs the official add_perturbation (../shared/golden/robusttok/perturb)."""
import pytest
import torch

import zoo
from zoo.quant.perturb import LatentPerturbation, topk_candidates

pytestmark = pytest.mark.golden

SUBCASES = {"d1_a0_b1": (1, 0.0, 1.0), "d1_a1_b1": (1, 1.0, 1.0), "d5_a0_b1": (5, 0.0, 1.0),
            "d5_a1_b1": (5, 1.0, 1.0), "d5_a0p5_b1": (5, 0.5, 1.0), "d5_a1_b0p5": (5, 1.0, 0.5),
            "d5_a1_b0p1": (5, 1.0, 0.1)}


@pytest.fixture(scope="module")
def case():
    from tests.conftest import load_golden

    g = load_golden("robusttok", "perturb")
    q = zoo.load_official("robusttok.quantizer", g.state_dict_path, g.config_path)
    return g, q


def test_clean_quantizer(case):
    g, q = case
    torch.testing.assert_close(q.embedding.weight, g.inputs["codebook"], atol=0, rtol=0)
    q.train()
    out = q(g.inputs["z"])
    q.eval()
    assert torch.equal(out.ids.reshape(-1), g.expected["nearest_indices"])
    torch.testing.assert_close(out.z_q, g.inputs["z_q"], atol=1e-6, rtol=0)
    tol = dict(atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(out.losses["codebook"], g.expected["clean_vq_loss_train"], **tol)
    torch.testing.assert_close(out.losses["commitment"], g.expected["clean_commit_loss_train"], **tol)


@pytest.mark.parametrize("delta", [1, 5])
def test_candidate_sets(case, delta):
    g, q = case
    query = torch.nn.functional.normalize(g.inputs["z"].permute(0, 2, 3, 1).reshape(-1, 8), dim=-1)
    ids, dist = topk_candidates(query, q._codebook(), delta)
    want = g.expected[f"topk_candidates_d{delta}"]
    assert torch.equal(ids[:, 0], g.expected["nearest_indices"])
    assert torch.equal(ids.sort(1).values, want.sort(1).values)
    torch.testing.assert_close(dist, g.expected[f"topk_distances_d{delta}"], atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("tag", sorted(SUBCASES))
def test_perturbed_output(case, tag):
    g, q = case
    delta, alpha, beta = SUBCASES[tag]
    z = g.inputs["z"]
    pert = LatentPerturbation(alpha, delta, beta)
    with torch.no_grad():
        clean = q(z)
        torch.manual_seed(0)  # the official call draws from the default CPU generator after manual_seed(0)
        out = pert.perturb_output(q, z, clean)
    b = z.shape[0]
    rows = int(b * beta)
    assert torch.equal(out.ids.reshape(-1), g.expected[f"effective_indices_{tag}"])
    torch.testing.assert_close(out.z_q, g.expected[f"output_{tag}"], atol=1e-6, rtol=0)
    assert torch.equal(out.z_q[rows:], g.inputs["z_q"][rows:]) or rows == b  # other rows are z_q unchanged
    changed = int((out.ids.reshape(-1) != g.expected["nearest_indices"]).sum())
    assert changed == g.case["subcases"][tag]["n_tokens_changed_vs_nearest"]
    cands = g.expected[f"topk_candidates_d{delta}"]
    assert bool((out.ids.reshape(-1)[:, None] == cands).any(1).all())  # always one of the delta candidates


def test_clean_losses_unaffected_by_hook(case):
    g, q = case
    pert = LatentPerturbation(1.0, 5, 1.0, seed=0)
    handles = pert.attach(q)
    try:
        q.train()
        out = q(g.inputs["z"])
    finally:
        q.eval()
        for h in handles:
            h.remove()
    assert pert.calls == 1
    tol = dict(atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(out.losses["codebook"], g.expected["clean_vq_loss_train"], **tol)
    torch.testing.assert_close(out.losses["commitment"], g.expected["clean_commit_loss_train"], **tol)
    assert out.stats["perturbed_fraction"] > 0


@pytest.mark.parametrize("tag", ["d5_a0p5_b1", "d5_a1_b0p5"])
def test_generic_codebook_apply(case, tag):
    """``apply(z_e, ids, codebook)``: the form any quantizer with a codebook can call directly."""
    g, q = case
    delta, alpha, beta = SUBCASES[tag]
    z_n = torch.nn.functional.normalize(g.inputs["z"], dim=1)
    ids = g.expected["nearest_indices"].view(4, 4, 4)
    codebook = torch.nn.functional.normalize(g.inputs["codebook"], dim=-1)
    torch.manual_seed(0)
    z_q, new_ids = LatentPerturbation(alpha, delta, beta).apply(z_n, ids, codebook, z_q=g.inputs["z_q"], channel_dim=1)
    assert torch.equal(new_ids.reshape(-1), g.expected[f"effective_indices_{tag}"])
    torch.testing.assert_close(z_q, g.expected[f"output_{tag}"], atol=1e-6, rtol=0)
