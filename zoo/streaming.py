"""Chunked encode / decode of long audio in bounded memory, for any zoo audio tokenizer.

Overlap scheme: the signal is cut into chunks of ``chunk_seconds`` (a whole number of
tokens); each chunk is processed together with ``context_seconds`` of its neighbours on both
sides, and only the tokens (or samples) of the chunk itself are kept. Where the tokenizer's
receptive field fits in the context (convolutions), results equal the whole-signal ones;
recurrent parts (SEANet's LSTM) see a truncated history, so a small, measured difference
remains (``tests/test_streaming.py`` and ``scripts/benchmark.py --long`` report it). Peak
memory of the network is that of one chunk plus context, whatever the input length;
``encode_file`` / ``decode_to_file`` also keep the waveform itself on disk.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch

from .api import Tokens

__all__ = ["hop_length", "encode_chunked", "decode_chunked", "encode_file", "decode_to_file"]


def hop_length(tok) -> int:
    """Samples per token of an audio tokenizer (``sample_rate / tokens_per_second``, an integer)."""
    if tok.modality != "audio":
        raise ValueError(f"chunked processing is for audio tokenizers, got a {tok.modality} tokenizer")
    hop = tok.sample_rate / tok.tokens_per_second
    if abs(hop - round(hop)) > 1e-6:
        raise ValueError(f"{type(tok).__name__} has a fractional hop ({hop}); chunking needs whole samples")
    return int(round(hop))


def _chunk_tokens(tok, seconds: float, minimum: int) -> int:
    return max(minimum, int(round(seconds * tok.tokens_per_second)))


def _encode_blocks(tok, blocks: Iterator[tuple[torch.Tensor, int, int]], num_samples: int, hop: int,
                   batch: int, **kwargs) -> Tokens:
    """blocks yield (wave [B, b-a], a, start): a window starting at sample a whose own chunk starts at start."""
    ids = None
    for window, a, start, count in blocks:
        t = tok.encode(window, **kwargs)
        first, n = (start - a) // hop, -(-count // hop)
        part = t.ids[:, first:first + n]
        if ids is None:
            ids = torch.empty((batch, -(-num_samples // hop)) + tuple(part.shape[2:]), dtype=torch.long,
                              device=part.device)
            extras = t.extras
        ids[:, start // hop:start // hop + n] = part
    return Tokens(ids=ids, num_samples=num_samples, extras=extras)


def encode_chunked(tok, wave: torch.Tensor, chunk_seconds: float = 20.0, context_seconds: float = 2.0,
                   **kwargs) -> Tokens:
    """wave ``[B, T]`` (or ``[B, 1, T]``) in [-1, 1] -> Tokens, ``chunk_seconds`` at a time."""
    wave = wave.reshape(wave.shape[0], -1) if wave.dim() == 3 else wave
    if wave.dim() != 2:
        raise ValueError(f"audio must be [B, T] or [B, 1, T], got {tuple(wave.shape)}")
    hop = hop_length(tok)
    chunk = _chunk_tokens(tok, chunk_seconds, 1) * hop
    ctx = _chunk_tokens(tok, context_seconds, 0) * hop
    total = wave.shape[-1]

    def blocks():
        for start in range(0, total, chunk):
            a, b = max(0, start - ctx), min(total, start + chunk + ctx)
            yield wave[:, a:b], a, start, min(chunk, total - start)

    return _encode_blocks(tok, blocks(), total, hop, wave.shape[0], **kwargs)


def _decode_windows(tok, tokens: Tokens, chunk_tokens: int, ctx_tokens: int, hop: int, **kwargs):
    """Yield the samples of each chunk in order (``[B, n * hop]``)."""
    ids, n = tokens.ids, tokens.ids.shape[1]
    for s in range(0, n, chunk_tokens):
        a, b = max(0, s - ctx_tokens), min(n, s + chunk_tokens + ctx_tokens)
        y = tok.decode(Tokens(ids=ids[:, a:b], extras=dict(tokens.extras)), **kwargs)
        y = y.reshape(y.shape[0], -1)
        if y.shape[-1] != (b - a) * hop:
            raise ValueError(f"{type(tok).__name__}.decode returned {y.shape[-1]} samples for {b - a} tokens; "
                             f"chunked decoding needs exactly tokens * hop ({(b - a) * hop})")
        keep = min(chunk_tokens, n - s)
        yield y[:, (s - a) * hop:(s - a + keep) * hop]


def decode_chunked(tok, tokens: Tokens | torch.Tensor, chunk_seconds: float = 20.0, context_seconds: float = 2.0,
                   **kwargs) -> torch.Tensor:
    """Tokens -> wave ``[B, T]`` (trimmed to ``tokens.num_samples`` when known), chunk by chunk."""
    tokens = tokens if isinstance(tokens, Tokens) else Tokens(ids=tokens)
    hop = hop_length(tok)
    parts = list(_decode_windows(tok, tokens, _chunk_tokens(tok, chunk_seconds, 1),
                                 _chunk_tokens(tok, context_seconds, 0), hop, **kwargs))
    wave = torch.cat(parts, dim=-1)
    return wave[:, :tokens.num_samples] if tokens.num_samples is not None else wave


def encode_file(tok, path: str | os.PathLike, chunk_seconds: float = 20.0, context_seconds: float = 2.0,
                **kwargs) -> Tokens:
    """Encode an audio file of any length, reading it block by block (mono, at ``tok.sample_rate``)."""
    import soundfile as sf

    hop = hop_length(tok)
    chunk = _chunk_tokens(tok, chunk_seconds, 1) * hop
    ctx = _chunk_tokens(tok, context_seconds, 0) * hop
    with sf.SoundFile(str(path)) as f:
        if f.samplerate != tok.sample_rate:
            raise ValueError(f"{path} is at {f.samplerate} Hz but the tokenizer expects {tok.sample_rate} Hz; "
                             "resample the file first (zoo.audio.resample) for streaming")
        total = f.frames
        if total == 0:
            raise ValueError(f"{path} holds no samples")

        def blocks():
            for start in range(0, total, chunk):
                a, b = max(0, start - ctx), min(total, start + chunk + ctx)
                f.seek(a)
                data = torch.from_numpy(f.read(b - a, dtype="float32", always_2d=True)).mean(dim=1)
                yield data[None].clamp(-1, 1), a, start, min(chunk, total - start)

        return _encode_blocks(tok, blocks(), total, hop, 1, **kwargs)


def decode_to_file(tok, tokens: Tokens, path: str | os.PathLike, chunk_seconds: float = 20.0,
                   context_seconds: float = 2.0, **kwargs) -> Path:
    """Decode ``tokens`` (batch 1) straight into a 16-bit wav/flac file, chunk by chunk."""
    import soundfile as sf

    if tokens.batch_size != 1:
        raise ValueError(f"decode_to_file writes one signal; got a batch of {tokens.batch_size}")
    hop = hop_length(tok)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remaining = tokens.num_samples if tokens.num_samples is not None else tokens.ids.shape[1] * hop
    with sf.SoundFile(str(path), "w", samplerate=tok.sample_rate, channels=1, subtype="PCM_16") as f:
        for part in _decode_windows(tok, tokens, _chunk_tokens(tok, chunk_seconds, 1),
                                    _chunk_tokens(tok, context_seconds, 0), hop, **kwargs):
            part = part[0, :remaining].clamp(-1, 1).float().cpu().numpy()
            f.write(part)
            remaining -= part.shape[0]
    return path
