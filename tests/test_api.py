"""Core API: Tokens, input validation, save/load round trip, strict loading."""
import json

import pytest
import torch
from torch import nn

import zoo
from zoo.api import Tokenizer, TokenizerOutput, Tokens
from zoo.quant import VectorQuantizer


class PatchVQ(Tokenizer):
    """A minimal real tokenizer for API tests: 8x8 patch conv -> VQ -> transposed conv."""

    modality = "image"

    def __init__(self, dim: int = 8, codebook: int = 32, patch: int = 8):
        super().__init__()
        self.patch = patch
        self.enc = nn.Conv2d(3, dim, patch, patch)
        self.quant = VectorQuantizer(codebook, dim)
        self.dec = nn.ConvTranspose2d(dim, 3, patch, patch)

    @property
    def codebook_size(self):
        return self.quant.codebook_size

    def token_shape(self, input_shape):
        return ((input_shape[-2] // self.patch) * (input_shape[-1] // self.patch),)

    def _encode(self, x):
        out = self.quant(self.enc(x))
        return Tokens(out.ids.flatten(1), input_shape=tuple(x.shape[-2:]))

    def _decode(self, tokens):
        h, w = tokens.input_shape or (32, 32)
        ids = tokens.ids.view(-1, h // self.patch, w // self.patch)
        return self.dec(self.quant.ids_to_latents(ids))

    def forward(self, x):
        out = self.quant(self.enc(x))
        recon = self.dec(out.z_q)
        return TokenizerOutput(recon, Tokens(out.ids.flatten(1)),
                               {"l2": (recon - x).pow(2).mean(), **out.losses}, out.stats)


@pytest.fixture
def tok():
    torch.manual_seed(0)
    return PatchVQ().eval()


def test_encode_decode_real_photo(tok, photo_batch):
    tokens = tok.encode(photo_batch[:2, :, :32, :32])
    assert tokens.ids.shape == (2, 16) and tokens.ids.dtype == torch.long
    assert int(tokens.ids.max()) < tok.codebook_size
    x_hat = tok.decode(tokens)
    assert x_hat.shape == (2, 3, 32, 32)
    assert torch.equal(tok.decode(tokens.ids.view(2, 16).clone()), tok.decode(Tokens(tokens.ids, input_shape=(32, 32))))


def test_uint8_images_are_converted(tok, photo_batch):
    x = photo_batch[:1, :, :32, :32]
    as_u8 = (x * 255).round().to(torch.uint8)
    assert torch.equal(tok.encode(as_u8).ids, tok.encode(as_u8.float() / 255).ids)


@pytest.mark.parametrize("bad, err, msg", [
    (torch.rand(3, 32, 32), ValueError, r"\[B, 3, H, W\]"),
    (torch.rand(1, 1, 32, 32), ValueError, r"\[B, 3, H, W\]"),
    (torch.rand(1, 3, 32, 32) * 255, ValueError, r"\[0, 1\]"),
    (torch.rand(1, 3, 32, 32) * 2 - 1, ValueError, r"\[0, 1\]"),
    (torch.randint(0, 3, (1, 3, 32, 32)), TypeError, "float"),
    (torch.full((1, 3, 32, 32), float("nan")), ValueError, "NaN"),
])
def test_bad_images_raise(tok, bad, err, msg):
    with pytest.raises(err, match=msg):
        tok.encode(bad)


def test_out_of_range_ids_raise(tok):
    with pytest.raises(ValueError, match="out of range"):
        tok.decode(torch.full((1, 16), tok.codebook_size))
    with pytest.raises(ValueError, match="out of range"):
        tok.decode(torch.full((1, 16), -1))
    with pytest.raises(TypeError):
        tok.decode(torch.zeros(1, 16))  # float ids


def test_audio_validation():
    from zoo.validate import check_sample_rate, validate_audio

    assert validate_audio(torch.zeros(2, 1, 100)).shape == (2, 100)
    with pytest.raises(ValueError, match="mono"):
        validate_audio(torch.zeros(1, 2, 100))
    with pytest.raises(ValueError, match="empty"):
        validate_audio(torch.zeros(1, 0))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        validate_audio(torch.full((1, 10), 2.0))
    with pytest.raises(TypeError, match="int16"):
        validate_audio(torch.zeros(1, 10, dtype=torch.int16))
    with pytest.raises(ValueError, match="24000 Hz"):
        check_sample_rate(16000, 24000)


def test_tokens_state_round_trip():
    t = Tokens(torch.arange(6).view(1, 6), lengths=[4], num_samples=123, input_shape=(8, 8), extras={"b": 1})
    t2 = Tokens.from_state(t.state())
    assert torch.equal(t2.ids, t.ids) and t2.lengths.tolist() == [4] and t2.num_samples == 123
    assert t2.input_shape == (8, 8) and t2.extras == {"b": 1}
    with pytest.raises(ValueError, match="lengths"):
        Tokens(torch.zeros(2, 3, dtype=torch.long), lengths=[1])
    with pytest.raises(ValueError):
        Tokens(torch.zeros(4, dtype=torch.long))


def test_save_and_from_pretrained_round_trip(tok, tmp_path, photo_batch):
    tok.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["tokenizer_class"] == "PatchVQ" and cfg["codebook"] == 32
    loaded = zoo.from_pretrained(tmp_path / "m")
    assert isinstance(loaded, PatchVQ) and not loaded.training
    x = photo_batch[:1, :, :32, :32]
    assert torch.equal(loaded.encode(x).ids, tok.encode(x).ids)
    assert torch.equal(PatchVQ.from_pretrained(tmp_path / "m").encode(x).ids, tok.encode(x).ids)


def test_from_pretrained_is_strict(tok, tmp_path):
    from zoo.checkpoint import save_state_dict

    tok.save_pretrained(tmp_path / "m")
    sd = tok.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["enc.bias"]
    save_state_dict(sd, tmp_path / "m" / "model.safetensors")
    with pytest.raises(zoo.CheckpointMismatchError, match=r"(?s)missing keys.*enc\.bias.*unexpected keys.*extra\.weight"):
        zoo.from_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="strict"):
        PatchVQ.from_pretrained(tmp_path / "m", strict=False)


def test_from_pretrained_rejects_foreign_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 3}))
    with pytest.raises(ValueError, match="tokenizer_class"):
        zoo.from_pretrained(tmp_path)


def test_training_forward_has_gradients(tok, photo_batch):
    tok.train()
    out = tok(photo_batch[:2, :, :32, :32])
    assert set(out.losses) == {"l2", "commitment", "codebook"}
    out.loss.backward()
    assert tok.enc.weight.grad is not None and tok.quant.embedding.weight.grad is not None
