"""Beam search of residual-VQ ids (zoo.quant.rvq_search): greedy at beam 1, exhaustive at full
beam, never worse on average in between, memory blocks, float32 under autocast, errors."""
import itertools

import pytest
import torch

from zoo.quant import residual_beam_search
from zoo.quant.rvq_search import metric_codebooks
from zoo.quant.vq import nearest_code


def _codebooks(levels=3, k=8, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(k, d, generator=g) * 0.6 ** i for i in range(levels)]


def _error(z, codebooks, ids):
    q = sum(c[ids[:, i]] for i, c in enumerate(codebooks))
    return (z - q).pow(2).sum(1)


def test_beam_one_is_the_greedy_residual_search():
    books = _codebooks()
    z = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
    residual, greedy = z.clone(), []
    for c in books:
        ids = nearest_code(residual, c)
        greedy.append(ids)
        residual = residual - c[ids]
    assert torch.equal(residual_beam_search(z, books, beam=1), torch.stack(greedy, 1))


def test_full_beam_finds_the_exhaustive_optimum_and_wider_beams_do_better():
    books = _codebooks(levels=3, k=5)
    z = torch.randn(60, 4, generator=torch.Generator().manual_seed(2))
    combos = torch.tensor(list(itertools.product(range(5), repeat=3)))  # [125, 3]
    sums = sum(c[combos[:, i]] for i, c in enumerate(books))  # [125, 4]
    best = combos[torch.cdist(z, sums).argmin(1)]
    found = residual_beam_search(z, books, beam=25)  # K^(L-1): nothing is pruned before the last level
    torch.testing.assert_close(_error(z, books, found), _error(z, books, best))
    errors = [float(_error(z, books, residual_beam_search(z, books, beam=b)).mean()) for b in (1, 4, 25)]
    assert errors[0] > errors[1] >= errors[2]


def test_blocks_of_rows_give_the_same_ids(monkeypatch):
    import zoo.quant.rvq_search as search

    books = _codebooks(k=16)
    z = torch.randn(333, 4, generator=torch.Generator().manual_seed(3))
    whole = residual_beam_search(z, books, beam=4)
    monkeypatch.setattr(search, "_BLOCK", 4 * 16 * 10)  # 10 rows per block
    assert torch.equal(residual_beam_search(z, books, beam=4), whole)
    assert residual_beam_search(z[:0], books, beam=4).shape == (0, 3)


def test_float32_under_autocast_and_a_metric_by_change_of_variables():
    books = _codebooks(k=32)
    z = torch.randn(100, 4, generator=torch.Generator().manual_seed(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(residual_beam_search(z, books, beam=3), residual_beam_search(z, books, beam=3))
    # ||A (z - q)||^2 with A = Q R: search R z against R c
    a = torch.randn(6, 4, generator=torch.Generator().manual_seed(5))
    _, r = torch.linalg.qr(a)
    ids = residual_beam_search(z @ r.t(), metric_codebooks(books, r), beam=1)
    direct, residual = [], z @ a.t()
    mapped = [c @ a.t() for c in books]
    for c in mapped:
        i = torch.cdist(residual, c).argmin(1)
        direct.append(i)
        residual = residual - c[i]
    assert (ids == torch.stack(direct, 1)).float().mean() > 0.99  # rounding at near-ties only


def test_bad_arguments_get_clear_errors():
    books = _codebooks()
    z = torch.randn(5, 4)
    for beam in (0, 1.5, True):
        with pytest.raises(ValueError, match="beam"):
            residual_beam_search(z, books, beam=beam)
    with pytest.raises(ValueError, match="same D"):
        residual_beam_search(torch.randn(5, 3), books)
    with pytest.raises(ValueError, match="same D"):
        residual_beam_search(z, [])
