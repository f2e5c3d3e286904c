"""Chunked / streaming audio: exact for convolutional codecs, bounded error otherwise."""
import pytest
import torch

import zoo
from zoo.data.offline import load_speech, speech_paths
from zoo.streaming import decode_chunked, decode_to_file, encode_chunked, encode_file, hop_length

SR = 24000


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """~8 s of real Dutch speech at 24 kHz, [1, T]."""
    clips = [load_speech(p, SR) for p in speech_paths("nl")[:10]]
    return torch.cat(clips)[: SR * 8][None].clamp(-1, 1)


def conv_codec():
    """A purely convolutional WavTokenizer (no LSTM, no attention position net), codebook
    initialised by k-means on real speech so that ids are diverse."""
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("wavtokenizer_tiny_75.scratch", lstm_layers=0, pos_net=False)
    return tok


@pytest.fixture(scope="module")
def codec(speech):
    tok = conv_codec()
    tok.train()
    tok(speech[:, : SR * 3])  # first training batch: k-means codebook init
    return tok.eval()


#: Relative difference between a frame's latent computed on a chunk-with-context window and on the
#: whole signal. With the receptive field inside the context the two are the same sums, reassociated
#: (convolution kernels pick their blocking from the input length): fp32 rounding, ~1e-6 here.
LATENT_REL_BOUND = 1e-4


def _window_latents(codec, speech, chunk_seconds, context_seconds) -> torch.Tensor:
    """The latents encode_chunked quantises: each chunk's frames, computed on its window with context."""
    hop = hop_length(codec)
    chunk = round(chunk_seconds * codec.tokens_per_second) * hop
    ctx = round(context_seconds * codec.tokens_per_second) * hop
    total, parts = speech.shape[-1], []
    for start in range(0, total, chunk):
        a, b = max(0, start - ctx), min(total, start + chunk + ctx)
        z = codec.latents(speech[:, a:b])
        first = (start - a) // hop
        parts.append(z[..., first:first + -(-min(chunk, total - start) // hop)])
    return torch.cat(parts, -1)


def test_convolutional_codec_streams_exactly(codec, speech):
    """Chunked ids equal whole-signal ids except at near-ties: a frame may change only where the two
    nearest codes are closer than the (bounded) latent difference can reorder."""
    full = codec.encode(speech)
    assert full.ids.unique().numel() > 50
    chunked = encode_chunked(codec, speech, chunk_seconds=1.5, context_seconds=1.0)
    assert chunked.ids.shape == full.ids.shape and chunked.num_samples == speech.shape[-1]
    z = codec.latents(speech)[0].T.double()                       # [F, D]
    zw = _window_latents(codec, speech, 1.5, 1.0)[0].T.double()
    rel = ((zw - z).norm(dim=1) / z.norm(dim=1).clamp_min(1e-12)).max().item()
    assert rel < LATENT_REL_BOUND, rel
    differ = (chunked.ids != full.ids)[0].nonzero().flatten()
    assert differ.numel() <= full.ids.shape[1] // 100, f"{differ.numel()} of {full.ids.shape[1]} ids differ"
    book = codec.quantizer.codebook.double()
    for t in differ.tolist():
        c_full, c_chunk = book[full.ids[0, t]], book[chunked.ids[0, t]]
        gap = (z[t] - c_chunk).square().sum() - (z[t] - c_full).square().sum()  # >= 0: full picked the nearest
        # moving z by e changes the gap by at most 2 |e| |c_full - c_chunk|
        flip_reach = 2 * LATENT_REL_BOUND * z[t].norm() * (c_full - c_chunk).norm()
        assert 0 <= gap <= flip_reach, (t, float(gap), float(flip_reach))
    y_full = codec.decode(full)
    y_chunked = decode_chunked(codec, full, chunk_seconds=1.5, context_seconds=1.0)
    assert y_chunked.shape == y_full.shape == speech.shape
    torch.testing.assert_close(y_chunked, y_full, atol=2e-5, rtol=0)


def test_without_context_chunk_boundaries_differ(codec, speech):
    """The context is what makes chunking exact: with none, samples near the cuts change."""
    full = codec.encode(speech)
    y_full = codec.decode(full)
    y_cut = decode_chunked(codec, full, chunk_seconds=1.5, context_seconds=0.0)
    assert (y_cut - y_full).abs().max() > 1e-3


def test_file_streaming_matches_in_memory(codec, speech, tmp_path):
    from zoo.audio import load_audio, save_audio

    path = save_audio(tmp_path / "in.wav", speech[0], SR)
    wave, _ = load_audio(path)  # 16-bit PCM as written
    in_memory = encode_chunked(codec, wave, chunk_seconds=2.0, context_seconds=0.5)
    streamed = encode_file(codec, path, chunk_seconds=2.0, context_seconds=0.5)
    assert torch.equal(streamed.ids, in_memory.ids) and streamed.num_samples == wave.shape[-1]
    out = decode_to_file(codec, streamed, tmp_path / "out.wav", chunk_seconds=2.0, context_seconds=0.5)
    decoded, rate = load_audio(out)
    assert rate == SR and decoded.shape[-1] == wave.shape[-1]
    ref = decode_chunked(codec, streamed, chunk_seconds=2.0, context_seconds=0.5).clamp(-1, 1)
    assert (decoded - ref).abs().max() <= 1.0 / 32767 + 1e-6  # 16-bit rounding only


def test_recurrent_codec_error_is_bounded(speech):
    """Official WavTokenizer layout (LSTM + attention): chunking is approximate; the measured
    difference stays small against the signal."""
    torch.manual_seed(0)
    tok = zoo.create_tokenizer("wavtokenizer_tiny_75.scratch")
    tok.train()
    tok(speech[:, : SR * 3])
    tok.eval()
    full = tok.encode(speech)
    y_full = tok.decode(full)
    y = decode_chunked(tok, full, chunk_seconds=3.0, context_seconds=1.0)
    rel = (y - y_full).pow(2).mean() / y_full.pow(2).mean()
    assert rel < 0.5  # documented scheme; trained models are measured by scripts/benchmark.py


def test_errors():
    torch.manual_seed(0)
    img = zoo.create_tokenizer(zoo.list_tokenizers("*tiny*", modality="image")[0])
    with pytest.raises(ValueError, match="audio tokenizers"):
        hop_length(img)
    tok = conv_codec().eval()
    with pytest.raises(ValueError, match="one signal"):
        decode_to_file(tok, zoo.Tokens(torch.zeros(2, 10, dtype=torch.long)), "/tmp/x.wav")
