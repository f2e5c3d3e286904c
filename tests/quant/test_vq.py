"""VectorQuantizer against hand-computed cases."""
import torch
import torch.nn.functional as F

from zoo.quant import VectorQuantizer, codebook_stats


def make_vq(**kw):
    vq = VectorQuantizer(3, 2, **kw)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    return vq


def test_nearest_code_and_losses_by_hand():
    vq = make_vq(beta=0.25, channel_dim=-1)
    z = torch.tensor([[[0.9, 0.1], [0.1, 1.2], [0.2, 0.2]]], requires_grad=True)
    out = vq(z)
    assert out.ids.tolist() == [[1, 2, 0]]
    zq = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]])
    torch.testing.assert_close(out.z_q, zq)
    mse = ((zq - z.detach()) ** 2).mean()
    torch.testing.assert_close(out.losses["commitment"], 0.25 * mse)
    torch.testing.assert_close(out.losses["codebook"], mse)
    out.z_q.sum().backward()  # straight-through: d z_q / d z = identity
    torch.testing.assert_close(z.grad, torch.ones_like(z))


def test_l2_norm_is_cosine_nearest():
    vq = VectorQuantizer(2, 2, l2_norm=True, channel_dim=-1)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 0.1]]))
    out = vq(torch.tensor([[[0.1, 0.5], [3.0, 1.0]]]))
    assert out.ids.tolist() == [[1, 0]]  # direction, not magnitude
    torch.testing.assert_close(out.z_q.norm(dim=-1), torch.ones(1, 2))
    torch.testing.assert_close(vq.ids_to_latents(out.ids), F.normalize(vq.embedding.weight, dim=-1)[out.ids])


def test_channel_first_layout_and_stats():
    vq = make_vq()
    z = torch.zeros(1, 2, 2, 2)
    z[0, :, 0, 0] = torch.tensor([1.0, 0.0])
    out = vq(z)
    assert out.ids.shape == (1, 2, 2) and out.ids[0, 0, 0] == 1 and (out.ids.flatten()[1:] == 0).all()
    stats = codebook_stats(out.ids, 3)
    torch.testing.assert_close(stats["usage"], torch.tensor(2 / 3))
    p = torch.tensor([0.75, 0.25])
    torch.testing.assert_close(stats["perplexity"], torch.exp(-(p * p.log()).sum()))


def test_chunked_nearest_code_matches_the_dense_search():
    """Row chunks and a dropped |z|^2 give the dense search's ids (random data: no near-ties), also
    with a last chunk shorter than the others and under autocast; k-means takes it as its search."""
    from zoo.quant.ema_vq import kmeans
    from zoo.quant.vq import nearest_code, nearest_code_chunked

    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(1000, 12, generator=g), torch.randn(64, 12, generator=g)
    assert torch.equal(nearest_code_chunked(z, codebook, chunk=300), nearest_code(z, codebook))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nearest_code_chunked(z.bfloat16(), codebook, chunk=256), nearest_code(z.bfloat16(), codebook))
    dense = kmeans(z, 16, 5, generator=torch.Generator().manual_seed(1))
    chunked = kmeans(z, 16, 5, generator=torch.Generator().manual_seed(1), assign=nearest_code_chunked)
    torch.testing.assert_close(chunked, dense)
