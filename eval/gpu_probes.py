"""Throughput probes of the device check (``scripts/device_check.sh``): rFID feature extraction
and FlexTok's flex-attention encoder against SDPA. Both run on any device (CPU for a dry run).

- ``fid_feature_throughput``: images/s of the rFID InceptionV3 feature network (pool3, 2048-d;
  uint8 ``[B, 3, side, side]`` input resized to 299 inside, as in ``eval/fid.py``); the weights
  do not change the cost, so the network is randomly initialised (no download).
- ``flextok_attention``: FlexTok encode time with the SDPA encoder (materialised causal-last
  mask) and with flex-attention (block mask, compiled on CUDA), and their id agreement.
"""
from __future__ import annotations

import torch

__all__ = ["fid_feature_throughput", "flextok_attention"]


def fid_feature_throughput(device: str = "cuda", batch_size: int = 64, side: int = 256, repeats: int = 5,
                           warmup: int = 2, dtype: str = "fp32") -> dict:
    """Images per second of rFID feature extraction at ``batch_size`` (``dtype`` "bf16": autocast)."""
    from eval.benchmark import time_call
    from eval.fid import InceptionFeatures
    from zoo.precision import precision_context, resolve_precision

    dev = torch.device(device)
    net = InceptionFeatures(weights=False).to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch_size, 3, side, side), dtype=torch.uint8, generator=g).to(dev)

    def run():
        with torch.inference_mode(), precision_context(dev, resolve_precision(dtype)):
            return net(x)

    ms = time_call(run, repeats, warmup, dev)
    return {"probe": "fid_features", "device": str(dev), "dtype": dtype, "batch": batch_size, "side": side,
            "ms_per_batch": ms, "images_per_s": batch_size / (ms / 1000)}


def flextok_attention(name: str = "flextok_d12_d12.in1k", device: str = "cuda", batch_size: int = 8,
                      repeats: int = 5, warmup: int = 2, dtype: str = "fp32") -> list[dict]:
    """FlexTok encode with SDPA and with flex-attention (random weights): ms per batch, ids equal."""
    import zoo
    from eval.benchmark import make_input, time_call
    from eval.precision import id_agreement

    dev = torch.device(device)
    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name, pretrained=False).to(dev).eval()
    x = make_input(tok, zoo.get_info(name), batch_size, None).to(dev)
    rows, ref = [], None
    for backend in ("sdpa", "flex"):
        tok.set_attention_backend(backend)
        ids = tok.encode(x, dtype=dtype).ids
        ref = ids if ref is None else ref
        ms = time_call(lambda: tok.encode(x, dtype=dtype), repeats, warmup, dev)
        rows.append({"probe": "flextok_attention", "tokenizer": name, "backend": backend, "device": str(dev),
                     "dtype": dtype, "batch": batch_size, "encode_ms": ms, "ids_equal_to_sdpa": id_agreement(ids, ref)})
    tok.set_attention_backend("sdpa")
    return rows
