"""The CUDA path: encode / decode / a training step of the small models on the GPU, bf16 autocast,
and ids of CPU against CUDA. Every test here is marked ``cuda`` and skipped, with the reason,
where no CUDA device is present (tests/conftest.py); ``scripts/device_check.sh`` runs them.
``ZOO_CUDA_TESTS_ON_CPU=1`` runs the same tests with the "GPU" side on the CPU (the dry run of
``scripts/device_check.sh --dry-run``: it checks the tests' own logic, not the CUDA kernels).

Bounds:
- CPU against CUDA, float32 with TF32 off (cuBLAS / cuDNN and oneDNN / MKL differ only in
  summation order, ~1e-7 relative per op): an id can change only at a near-tie between codes,
  so at least 99 % of ids are equal (the same reasoning and bound as the onnxruntime parity in
  tests/export/test_onnx.py), and decoding the same ids agrees within 1e-3 (images in [0, 1],
  audio in [-1, 1]: ~100x the float32 noise through these decoders, far below a broken kernel).
  dMel's ids are thresholds of a float32 STFT (cuFFT against pocketFFT): 99.9 %.
- bf16 autocast on CUDA: the bounds of tests/test_precision.py (bf16 rounding does not depend
  on the device; CUDA GEMMs accumulate in float32 like the CPU ones).
"""
import os

import pytest
import torch

import zoo
from eval.precision import id_agreement, seeded_decode_kwargs, signal_psnr

pytestmark = pytest.mark.cuda

SMALL = ["titok_tiny.untrained", "onedpiece_tiny.untrained", "flextok_tiny.untrained", "fqgan_tiny.untrained",
         "tokenflow_tiny.untrained", "video1d_tiny.untrained", "causal3d_tiny.untrained",
         "wavtokenizer_tiny_75.scratch", "dmel_vocos_tiny.scratch", "mel_rvq_tiny.scratch", "titok_demo64.demo",
         "wavtokenizer_demo75.demo", "dmel_vocos_demo.demo", "mel_rvq_demo.demo"]
CUDA = torch.device("cpu" if os.environ.get("ZOO_CUDA_TESTS_ON_CPU") == "1" else "cuda")


@pytest.fixture(autouse=True)
def _no_tf32():
    """fp32 means fp32 here: TF32 (10-bit mantissa) would make CPU / CUDA parity an fp16-like question."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _tokenizer(name: str, device=CUDA):
    torch.manual_seed(0)
    info = zoo.get_info(name)
    return zoo.create_tokenizer(name, pretrained=info.source is not None).to(device).eval()


def _input(name: str, tok, batch: int = 2) -> torch.Tensor:
    from eval.benchmark import make_input

    return make_input(tok, zoo.get_info(name), batch, None)


def _decode_kw(tok) -> dict:
    return seeded_decode_kwargs(tok, {"steps": 2})()


@pytest.mark.parametrize("name", SMALL)
def test_encode_decode_on_cuda(name):
    tok = _tokenizer(name)
    x = _input(name, tok).to(CUDA)
    tokens = tok.encode(x)
    assert tokens.ids.device == x.device and tokens.ids.dtype == torch.long
    out = tok.decode(tokens, **_decode_kw(tok))
    assert out.device == x.device and out.dtype == torch.float32 and torch.isfinite(out).all()
    if tok.modality != "audio":  # image / video decoders clamp to [0, 1]; WavTokenizer's ISTFT does not clamp
        assert out.min() >= 0.0 and out.max() <= 1.0
    cpu_tokens = tok.encode(x.cpu())  # inputs on another device are moved to the tokenizer's
    assert cpu_tokens.ids.device == x.device


@pytest.mark.parametrize("name", SMALL)
def test_bf16_autocast_on_cuda(name):
    tok = _tokenizer(name)
    x = _input(name, tok).to(CUDA)
    ref = tok.encode(x)
    tokens = tok.encode(x, dtype="bf16")
    assert tokens.ids.shape == ref.ids.shape and tokens.ids.dtype == torch.long
    out = tok.decode(ref, dtype="bf16", **_decode_kw(tok))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["titok_tiny.untrained", "flextok_tiny.untrained", "fqgan_tiny.untrained",
                                  "tokenflow_tiny.untrained", "video1d_tiny.untrained", "causal3d_tiny.untrained",
                                  "wavtokenizer_tiny_75.scratch", "dmel_vocos_tiny.scratch", "mel_rvq_tiny.scratch"])
@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_training_step_on_cuda(name, amp):
    """One optimiser step of the training forward (fp32 and bf16 autocast): finite losses, gradients
    reach the parameters, and the step changes them."""
    tok = _tokenizer(name).train()
    x = _input(name, tok).to(CUDA)
    params = [p for p in tok.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1e-3)
    with torch.autocast(CUDA.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
        out = tok(x)
    loss = out.loss
    assert torch.isfinite(loss), out.losses
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    opt.step()
    assert any(not torch.equal(p.detach(), b) for p, b in zip(params, before))


def _check_cpu_against_cuda(name: str, x: torch.Tensor, share: float) -> None:
    """Ids of the CPU and CUDA encodes agree on at least ``share``; decoding the same ids on both
    devices agrees within 1e-3."""
    cpu, gpu = _tokenizer(name, "cpu"), _tokenizer(name)
    ref = cpu.encode(x)
    assert id_agreement(gpu.encode(x).ids.cpu(), ref.ids) >= share
    diff = (gpu.decode(ref).cpu() - cpu.decode(ref)).abs().max()
    assert diff <= 1e-3, diff


@pytest.mark.slow
def test_titok_demo_ids_cpu_against_cuda(photo_batch):
    _check_cpu_against_cuda("titok_demo64.demo", photo_batch, 0.99)


@pytest.mark.slow
def test_wavtokenizer_demo_ids_cpu_against_cuda():
    from zoo.data.offline import load_speech, speech_paths

    n = int(1.3 * 24000)
    x = torch.stack([load_speech(p, 24000)[:n] for p in speech_paths("alsa")])
    _check_cpu_against_cuda("wavtokenizer_demo75.demo", x, 0.99)


@pytest.mark.slow
def test_dmel_ids_cpu_against_cuda(speech_clip):
    _check_cpu_against_cuda("dmel_vocos_demo.demo", speech_clip(16000, 3.0), 0.999)


@pytest.mark.slow
def test_mel_rvq_ids_cpu_against_cuda(speech_clip):
    """The residual VQ's nearest-code search and the n_q-conditioned refiner on CUDA (every level)."""
    _check_cpu_against_cuda("mel_rvq_demo.demo", speech_clip(16000, 3.0), 0.99)


@pytest.mark.slow
def test_bf16_precision_bounds_on_cuda(photo_batch):
    """The CPU bounds of tests/test_precision.py hold on CUDA (TiTok demo on real photos)."""
    tok = _tokenizer("titok_demo64.demo")
    x = photo_batch.to(CUDA)
    ref = tok.encode(x)
    assert id_agreement(tok.encode(x, dtype="bf16").ids, ref.ids) >= 0.90
    assert signal_psnr(tok.decode(ref, dtype="bf16"), tok.decode(ref), 1.0).min() >= 40.0


def test_flextok_flex_attention_matches_sdpa_on_cuda():
    """The flex-attention encoder (block mask) computes the SDPA encoder's attention: ids agree up to
    near-ties (>= 99 %, as above)."""
    tok = _tokenizer("flextok_tiny.untrained")
    x = _input("flextok_tiny.untrained", tok).to(CUDA)
    ref = tok.encode(x).ids
    tok.set_attention_backend("flex")
    try:
        assert id_agreement(tok.encode(x).ids, ref) >= 0.99
    finally:
        tok.set_attention_backend("sdpa")
