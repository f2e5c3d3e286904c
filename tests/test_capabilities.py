"""Declared capabilities: what a tokenizer or quantizer can do is an attribute or method of its class,
checked here against the class's own code, so that callers never probe (no ``inspect`` of private
methods, no ``isinstance`` on concrete model or quantizer classes outside them)."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.api import Tokenizer, Tokens, tokenizer_class
from zoo.quant.base import Quantizer


def _tokenizer_classes() -> list[type[Tokenizer]]:
    import zoo.api

    tokenizer_class("TiTok")  # imports every model module
    return sorted(set(zoo.api._TOKENIZER_CLASSES.values()), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _tokenizer_classes(), ids=lambda c: c.__name__)
def test_decode_noise_is_declared_where_decode_takes_a_generator(cls):
    import inspect

    takes = "generator" in inspect.signature(cls._decode).parameters
    assert cls.decode_draws_noise == takes
    assert cls.decode_keywords() == set(inspect.signature(cls._decode).parameters) - {"self", "tokens"}
    assert cls.encode_keywords() == set(list(inspect.signature(cls._encode).parameters)[2:])  # (self, x, ...)
    assert cls.config_keys() == set(inspect.signature(cls.__init__).parameters) - {"self"}


def test_declaring_noise_without_a_generator_keyword_is_refused():
    with pytest.raises(TypeError, match="generator"):
        class Noisy(Tokenizer):  # noqa: F841
            modality = "image"
            decode_draws_noise = True

            def _decode(self, tokens):
                return tokens.ids.float()


def test_seeded_decode_noise_reproduces_flextok(photo_batch):
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("flextok_tiny.untrained").eval()
    side = tok.input_size[-1]
    x = torch.nn.functional.interpolate(photo_batch[:1], size=(side, side), mode="area")
    tokens = tok.encode(x)
    a = tok.decode(tokens, steps=2, **tok.decode_noise_kwargs(3))
    b = tok.decode(tokens, steps=2, **tok.decode_noise_kwargs(3))
    c = tok.decode(tokens, steps=2, **tok.decode_noise_kwargs(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert zoo.create_tokenizer("titok_tiny.untrained").decode_noise_kwargs(3) == {}


def test_token_perturbation_is_the_tokenizers():
    vae = zoo.create_tokenizer("titok_tiny.untrained", quantizer="vae", codebook_size=None)
    assert "VQ" in vae.token_perturbation().unsupported_reason()
    vq = zoo.create_tokenizer("titok_tiny.untrained")
    assert vq.token_perturbation().unsupported_reason() is None
    assert "VectorQuantizer" in vq.token_perturbation().definition()
    dmel = zoo.create_tokenizer("dmel_vocos_tiny.scratch")
    assert dmel.token_perturbation().unsupported_reason() is None
    assert dmel.token_perturbation().definition().startswith("dMel")


# ----------------------------------------------------------------------------- quantizers
def _quantizers() -> dict[str, tuple[Quantizer, object]]:
    """One small instance of every perturbable quantizer kind and an input for it."""
    from zoo.quant.dual import DualCodebookQuantizer, SharedMappingQuantizer
    from zoo.quant.ema_vq import EMAVectorQuantizer
    from zoo.quant.factorized import FactorizedQuantizer
    from zoo.quant.fsq import FSQ
    from zoo.quant.lfq import LookupFreeQuantizer
    from zoo.models.video_quant import StochasticCosineVQ
    from zoo.quant.vq import VectorQuantizer

    g = torch.Generator().manual_seed(0)

    def z(*shape):
        return torch.randn(*shape, generator=g)

    torch.manual_seed(0)
    return {
        "VectorQuantizer": (VectorQuantizer(32, 6), z(2, 6, 5, 5)),
        "VectorQuantizer/cosine": (VectorQuantizer(32, 6, l2_norm=True, channel_dim=-1), z(2, 9, 6)),
        "StochasticCosineVQ": (StochasticCosineVQ(32, 6), z(2, 9, 6)),  # eval mode: the nearest cosine code
        "EMAVectorQuantizer": (EMAVectorQuantizer(32, 6, kmeans_init=False), z(2, 6, 5, 5)),
        "LookupFreeQuantizer": (LookupFreeQuantizer(5), z(2, 5, 4, 4)),
        "FSQ": (FSQ((5, 4, 3)), z(2, 7, 3)),
        "FactorizedQuantizer": (FactorizedQuantizer((16, 24), (4, 6)), [z(2, 4, 3, 3), z(2, 6, 3, 3)]),
        "DualCodebookQuantizer": (DualCodebookQuantizer(16, semantic_dim=6, pixel_dim=3), z(2, 9, 3, 3)),
        "SharedMappingQuantizer": (SharedMappingQuantizer(16, semantic_dim=6, pixel_dim=3, pixel_weight=2.0),
                                   z(2, 9, 3, 3)),
    }


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_perturbable_quantizer_kind_is_checked():
    import zoo.models  # noqa: F401  (every model module, with the quantizers they define)
    import zoo.quant.dual, zoo.quant.ema_vq, zoo.quant.fsq, zoo.quant.lfq, zoo.quant.rvq  # noqa: E401, F401

    declared = {c.__name__ for c in _subclasses(Quantizer) if c.perturbable and c.__module__.startswith("zoo.")}
    assert declared == {k.split("/")[0] for k in _quantizers()}


@pytest.mark.parametrize("kind", list(_quantizers()))
def test_declared_search_space_is_the_quantizers_own_search(kind):
    """The nearest code of each query in ``perturbation_space`` is the id ``forward`` picks, and the
    tables of ``code_tables`` are the codebooks of that space."""
    from zoo.quant.vq import nearest_code

    q, z = _quantizers()[kind]
    q.eval()
    with torch.no_grad():
        out = q(z)
        space = q.perturbation_space(z)
        tables = q.code_tables()
    ids = out.ids if len(space) > 1 else out.ids[..., None]
    assert len(space) == len(tables) == ids.shape[-1]
    for g, ((query, codebook), table) in enumerate(zip(space, tables)):
        torch.testing.assert_close(codebook, table, rtol=0, atol=0)
        nearest = nearest_code(query.reshape(-1, query.shape[-1]), codebook).view(ids.shape[:-1])
        assert torch.equal(nearest, ids[..., g])


def test_wrappers_give_tables_and_refuse_the_search():
    from zoo.quant.dual import MultiScaleResidualQuantizer
    from zoo.quant.rvq import ResidualVectorQuantizer
    from zoo.quant.vq import VectorQuantizer

    rvq = ResidualVectorQuantizer(3, 16, 4)
    assert not rvq.perturbable and [t.shape for t in rvq.code_tables()] == [(16, 4)] * 3
    inner = VectorQuantizer(16, 4)
    ms = MultiScaleResidualQuantizer(inner, (1, 2))
    assert not ms.perturbable and torch.equal(ms.code_tables()[0], inner.code_tables()[0])
    with pytest.raises(TypeError, match="inner quantizer"):
        ms.perturbation_space(torch.zeros(1, 4, 2, 2))


def test_perturbed_tokens_of_a_tokens_object_keep_their_fields():
    from zoo.quant.perturb import perturb_tokens

    tok = zoo.create_tokenizer("titok_tiny.untrained")
    ids = torch.randint(0, tok.codebook_size, (2, 32))
    out = perturb_tokens(tok, Tokens(ids=ids, input_shape=(64, 64)), alpha=1.0, delta=4, seed=0)
    assert out.input_shape == (64, 64) and out.ids.shape == ids.shape and not torch.equal(out.ids, ids)
