"""ONNX export: ``encoder.onnx`` (signal -> ids), ``decoder.onnx`` (ids -> signal), ``metadata.json``.

Uses PyTorch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``, which needs the
``onnx`` and ``onnxscript`` packages: ``pip install tokenizer-zoo[export]``). The TorchScript
exporter (``dynamo=False``) was tried too: it fixes the audio length wherever the models do
integer arithmetic on shapes (EnCodec padding) and has no ONNX form for complex tensors (the
Vocos ISTFT head), so it is not used. ``nn.LSTM`` is exported as ONNX ``LSTM`` nodes
(``zoo.layers.onnx_lstm``) so that audio length stays dynamic.

Dynamic axes: the batch for every graph, and for audio the number of samples (encoder) and of
frames (decoder). Image size is fixed (the model's input size). Exported graphs do not check
their inputs: ``metadata.json`` states shapes, dtypes and ranges.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from .graphs import EXPORTABLE_FAMILIES, DecoderGraph, EncoderGraph, ExportError, export_family

__all__ = ["export_onnx", "weights_sha256", "file_sha256", "ExportError", "EXPORTABLE_FAMILIES", "DEFAULT_OPSET"]

DEFAULT_OPSET = 18
#: length of the example the audio graphs are traced with (seconds); other lengths run too
_EXAMPLE_SECONDS = 1.0


def weights_sha256(tok) -> str:
    """SHA-256 over the state dict (keys in sorted order, each key, dtype, shape and raw bytes):
    identifies the weights independently of the file they were read from."""
    h = hashlib.sha256()
    for key, t in sorted(tok.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _example(tok, family: str, batch: int) -> torch.Tensor:
    """A traced example in range (values do not matter for the graph, only dtype and rank)."""
    g = torch.Generator().manual_seed(0)
    if tok.modality == "image":
        side = tok.image_size
        return torch.rand(batch, 3, side, side, generator=g)
    n = int(_EXAMPLE_SECONDS * tok.sample_rate)
    return (torch.rand(batch, n, generator=g) * 2 - 1) * 0.5


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
            dynamic: dict[int, str], opset: int) -> None:
    # Dim.AUTO: the models' shape arithmetic (padding ceil, reflect-pad branches, broadcasting) adds
    # guards that a declared range cannot prove; the exported graphs are checked on batch sizes and
    # lengths other than the traced ones (tests/export/test_onnx.py)
    dims = {axis: torch.export.Dim.AUTO for axis in dynamic}
    import logging

    quiet = [logging.getLogger(n) for n in ("onnxscript", "onnx_ir", "torch.onnx", "torch.fx.experimental")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)  # the exporter's progress and optimiser chatter
    try:
        _export_quietly(module, example, path, input_name, output_name, dims, opset)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)


#: weights above this size go to ``<graph>.onnx.data`` beside the graph (protobuf files stop at 2 GiB)
EXTERNAL_DATA_BYTES = 1 << 30


def _export_quietly(module, example, path, input_name, output_name, dims, opset) -> None:
    weight_bytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), input_names=[input_name], output_names=[output_name],
                                    dynamic_shapes={input_name: dims}, opset_version=opset, dynamo=True,
                                    verbose=False, optimize=True)
    program.save(str(path), external_data=weight_bytes > EXTERNAL_DATA_BYTES)


def export_onnx(tok, out_dir: str | Path, *, name: str | None = None, parts=("encoder", "decoder"),
                opset: int = DEFAULT_OPSET) -> dict:
    """Write ``encoder.onnx`` / ``decoder.onnx`` (those in ``parts``) and ``metadata.json`` to ``out_dir``.

    tok: a TiTok / One-D-Piece, WavTokenizer, dMel or mel residual-VQ tokenizer (any other raises ``ExportError``
    naming the supported families; it is put in eval mode on the CPU); name: recorded in the
    metadata (registry name or folder). Graphs are float32. Returns the metadata dict.
    """
    from importlib.util import find_spec

    family = export_family(tok)
    parts = tuple(parts)
    if not parts or any(p not in ("encoder", "decoder") for p in parts):
        raise ValueError(f"parts must be a non-empty subset of ('encoder', 'decoder'), got {parts}")
    if find_spec("onnxscript") is None or find_spec("onnx") is None:
        raise ImportError("ONNX export needs the onnx and onnxscript packages: pip install 'tokenizer-zoo[export]'")
    tok = tok.eval().to("cpu")
    encoder = EncoderGraph(tok)
    decoder = DecoderGraph(tok) if "decoder" in parts else None  # raises before anything is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = tok.modality == "audio"
    example = _example(tok, family, batch=2)
    graphs = {}
    with torch.no_grad():
        ids = encoder(example)
        if "encoder" in parts:
            axes = {0: "batch", 1: "samples"} if audio else {0: "batch"}
            _export(encoder, example, out_dir / "encoder.onnx", "x", "ids", axes, opset)
            graphs["encoder"] = {"file": "encoder.onnx", "input": "x", "output": "ids"}
        if decoder is not None:
            axes = {0: "batch", 1: "frames"} if audio else {0: "batch"}
            _export(decoder, ids, out_dir / "decoder.onnx", "ids", "signal", axes, opset)
            graphs["decoder"] = {"file": "decoder.onnx", "input": "ids", "output": "signal"}
    for g in graphs.values():
        g["sha256"] = file_sha256(out_dir / g["file"])
        data = out_dir / (g["file"] + ".data")
        if data.exists():  # large models: the weights beside the graph
            g["external_data"], g["external_data_sha256"] = data.name, file_sha256(data)
    meta = _metadata(tok, family, name, ids, opset, graphs)
    (out_dir / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _metadata(tok, family: str, name: str | None, ids: torch.Tensor, opset: int, graphs: dict) -> dict:
    import onnx
    import onnxscript

    import zoo

    lo, hi = tok.input_range
    codebook = tok.codebook_size
    meta = {
        "name": name or type(tok).__name__, "tokenizer_class": type(tok).__name__, "family": family,
        "modality": tok.modality, "codebook_size": list(codebook) if isinstance(codebook, tuple) else codebook,
        "input_range": [lo, hi], "input_dtype": "float32", "ids_dtype": "int64", "signal_dtype": "float32",
        "opset": opset, "exporter": f"torch.onnx dynamo (torch {torch.__version__}, onnxscript "
                                     f"{onnxscript.__version__}, onnx {onnx.__version__})",
        "zoo_version": zoo.__version__, "weights_sha256": weights_sha256(tok), "config": tok.config,
        "graphs": graphs, "inputs_checked": False,
    }
    if tok.modality == "image":
        side = tok.image_size
        meta.update(input_shape=["batch", 3, side, side], ids_shape=["batch", *ids.shape[1:]],
                    signal_shape=["batch", 3, side, side],
                    notes="images RGB float32 in [0, 1] at exactly this size; the decoder clamps to [0, 1]")
    else:
        hop = tok.mel.hop_length if family == "mel_rvq" else tok.hop_length
        meta.update(sample_rate=tok.sample_rate, hop_length=hop, tokens_per_second=tok.tokens_per_second,
                    input_shape=["batch", "samples"])
        if family == "mel_rvq":
            n = tok.stack
            meta.update(ids_shape=["batch", f"ceil((samples // {hop} + 1) / {n})", tok.num_quantizers],
                        signal_shape=["batch", f"(positions * {n} - 1) * {hop}"],
                        notes=f"mono float32 in [-1, 1] at {tok.sample_rate} Hz, more than {tok.mel.n_fft // 2} "
                              f"samples; ids hold {tok.num_quantizers} residual codebooks per position, all of them "
                              "decoded; the decoder returns whole groups of frames, as zoo's decode does without "
                              "Tokens.num_samples: keep the first `samples`")
        elif family == "wavtokenizer":
            meta.update(ids_shape=["batch", f"ceil(samples / {hop})"], signal_shape=["batch", f"frames * {hop}"],
                        notes=f"mono float32 in [-1, 1] at {tok.sample_rate} Hz; the decoder returns frames * {hop} "
                              "samples: keep the first `samples` (what zoo's decode does with Tokens.num_samples)")
        else:
            meta.update(ids_shape=["batch", f"samples // {hop} + 1", tok.n_mels],
                        signal_shape=["batch", f"(frames - 1) * {hop}"],
                        notes=f"mono float32 at {tok.sample_rate} Hz, more than {tok.n_fft // 2} samples; ids are "
                              f"the {tok.centers.numel()} log-mel levels of each of the {tok.n_mels} channels")
    return meta
