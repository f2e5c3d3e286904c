"""FSQ: hand-computed cases, id <-> code round trips, parity with vector_quantize_pytorch."""
import math

import pytest
import torch

from zoo.quant.fsq import FSQ


def test_hand_computed_codes_and_ids():
    fsq = FSQ([8, 5])
    # bound(0) for L=8: tanh(atanh(0.5/3.5035)) * 3.5035 - 0.5 = 0 -> round 0 -> code 0
    # for L=5: bound(0) = 0 -> code 0; id = (0*4+4)*1 + (0*2+2)*8 = 20
    out = fsq(torch.zeros(1, 2))
    assert out.z_q.tolist() == [[0.0, 0.0]]
    assert out.ids.tolist() == [20]
    # huge inputs saturate at the extreme levels: L=8 -> +3/4 (1.0 unreachable), -1; L=5 -> +-1
    out = fsq(torch.tensor([[100.0, 100.0], [-100.0, -100.0]]))
    assert out.z_q.tolist() == [[0.75, 1.0], [-1.0, -1.0]]
    assert out.ids.tolist() == [(3 + 4) + (2 + 2) * 8, 0]
    # a value computed by hand: z = 0.3 on L=5: tanh(0.3) * 2.002 = 0.5839 -> round 1 -> code 0.5
    half = 4 * 1.001 / 2
    assert round(math.tanh(0.3) * half) == 1
    assert fsq(torch.tensor([[0.0, 0.3]])).z_q[0, 1].item() == 0.5


def test_flextok_levels_basis_and_round_trip():
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    assert fsq.codebook_size == 64000
    assert fsq._basis.tolist() == [1, 8, 64, 512, 2560, 12800]
    ids = torch.arange(64000)
    codes = fsq.ids_to_codes(ids)
    assert torch.equal(fsq.codes_to_ids(codes), ids)
    assert codes.min().item() == -1.0 and codes.max().item() == 1.0
    # codes are exactly representable multiples of 1/4 and 1/2
    assert torch.equal(codes[:, :3] * 4, (codes[:, :3] * 4).round())
    # quantizing a code's pre-image gives back the code
    z = torch.randn(4, 10, 6) * 3
    q = fsq(z)
    assert torch.equal(fsq.ids_to_codes(q.ids), q.z_q)


def test_matches_vector_quantize_pytorch():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    levels = [8, 8, 8, 5, 5, 5]
    ref = vqp.FSQ(levels=levels)  # preserve_symmetry=False: the same bound as FlexTok
    ours = FSQ(levels)
    torch.manual_seed(0)
    z = torch.randn(3, 50, 6) * 2
    q_ref, ids_ref = ref(z)
    out = ours(z)
    assert torch.equal(out.z_q, q_ref.float())
    assert torch.equal(out.ids, ids_ref.long())
    assert torch.equal(ours.ids_to_codes(ids_ref.long()), ref.indices_to_codes(ids_ref).float())


def test_straight_through_gradient_and_channel_dim():
    fsq = FSQ([7, 5, 5], channel_dim=1)
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = fsq(z)
    assert out.z_q.shape == z.shape and out.ids.shape == (2, 4, 4)
    out.z_q.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # odd levels with a non-power-of-two half width still round-trip exactly
    assert torch.equal(fsq.ids_to_latents(out.ids), out.z_q.detach())
    assert set(out.stats) == {"usage", "perplexity"}


def test_bad_inputs():
    with pytest.raises(ValueError, match="levels"):
        FSQ([8, 1])
    with pytest.raises(ValueError, match="channels"):
        FSQ([8, 5])(torch.zeros(2, 3))
