"""Codebook usage vs numpy / scipy on tokens of real photos (tiny untrained tokenizers)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from eval.usage import CodebookUsage


@pytest.fixture(scope="module")
def photo_tokens():
    import zoo
    from zoo.data.offline import photos

    name = "titok_tiny.untrained"
    if name not in zoo.list_tokenizers():
        pytest.skip(f"{name} is not registered")
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name).eval()
    size = zoo.get_info(name).input_size
    tokens = tok.encode(photos(size[-1], limit=8))
    return tok.codebook_size, tokens.ids


def test_usage_matches_numpy_on_photo_tokens(photo_tokens):
    k, ids = photo_tokens
    m = CodebookUsage(k, num_positions=ids.shape[1])
    m.update(ids[:3])
    m.update(ids[3:])
    out = m.compute()
    arr = ids.numpy()
    uniq, counts = np.unique(arr, return_counts=True)
    assert out["usage"].item() == pytest.approx(len(uniq) / k)
    h = scipy.stats.entropy(counts)
    assert out["perplexity"].item() == pytest.approx(np.exp(h), rel=1e-5)
    assert out["entropy_bits"].item() == pytest.approx(h / np.log(2), rel=1e-5)
    pos = [scipy.stats.entropy(np.unique(arr[:, j], return_counts=True)[1], base=2) for j in range(arr.shape[1])]
    np.testing.assert_allclose(out["position_entropy_bits"].numpy(), pos, rtol=1e-5, atol=1e-6)
    assert out["mean_position_entropy_bits"].item() == pytest.approx(np.mean(pos), rel=1e-5)


def test_groups_and_lengths():
    g = torch.Generator().manual_seed(0)
    ids = torch.stack([torch.randint(0, 16, (5, 7), generator=g), torch.randint(0, 4, (5, 7), generator=g)], -1)
    lengths = torch.tensor([7, 3, 5, 1, 7])
    m = CodebookUsage((16, 4), num_positions=8)
    m.update(ids, lengths=lengths)
    out = m.compute()
    keep = torch.arange(7)[None] < lengths[:, None]
    for gi, k in enumerate((16, 4)):
        vals = ids[..., gi][keep].numpy()
        u, c = np.unique(vals, return_counts=True)
        assert out["usage_per_group"][gi].item() == pytest.approx(len(u) / k)
        assert out["perplexity_per_group"][gi].item() == pytest.approx(np.exp(scipy.stats.entropy(c)), rel=1e-5)
    assert out["position_entropy_bits"][7].item() == 0  # never seen
    with pytest.raises(ValueError, match="outside"):
        m.update(torch.full((1, 2, 2), 9))
    with pytest.raises(ValueError, match="groups"):
        m.update(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(RuntimeError):
        CodebookUsage(4).compute()
