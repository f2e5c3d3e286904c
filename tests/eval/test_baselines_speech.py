"""Classic speech codecs (eval.baselines.speech) on real held-out speech: length, bits, alignment."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from eval.baselines.speech import CODEC2_DELAY, CODEC2_MODES, CODEC2_RATE, codec2, measure_delay, opus

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ("c2enc", "c2dec", "opusenc", "opusdec")),
                                reason="needs the Debian packages codec2 and opus-tools (`make test` installs them)")

#: Codec2 frame length (samples at 8 kHz) and bits per frame of each mode (the codec's specification)
FRAMES = {"700C": (320, 28), "1200": (320, 48), "1600": (320, 64), "2400": (160, 48), "3200": (160, 64)}


@pytest.fixture(scope="module")
def speech():
    """Three held-out utterances (not the training utterances the delay table was measured on), 16 kHz."""
    from eval.demo import held_out_speech

    _, clips = held_out_speech(16000)
    return clips[:3]


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(CODEC2_MODES))
def test_codec2_round_trip_length_bits_and_alignment(speech, mode):
    outs = [codec2(x, 16000, mode) for x in speech]
    samples, bits = FRAMES[mode]
    for x, out in zip(speech, outs):
        n8 = int(round(x.numel() * CODEC2_RATE / 16000))
        assert out.sample_rate == CODEC2_RATE and out.wave.shape == (n8,)
        assert torch.isfinite(out.wave).all() and float(out.wave.abs().max()) > 0.01
        # the file holds whole frames, each padded to whole bytes
        assert out.bits == (n8 // samples) * 8 * -(-bits // 8)
    # the aligned output has no delay left: re-measured on held-out speech, within 2 ms (16 samples);
    # the measurement's spread between independent halves of the calibration set is below 16 samples
    from zoo.audio import resample

    refs = [resample(x[None], 16000, CODEC2_RATE)[0] for x in speech]
    assert measure_delay([(r, o.wave) for r, o in zip(refs, outs)], CODEC2_RATE, max_lag=64) <= 16
    raw = [codec2(x, 16000, mode, align=False).wave for x in speech]
    assert abs(measure_delay(list(zip(refs, raw)), CODEC2_RATE, max_lag=400, step=2) - CODEC2_DELAY[mode]) <= 16


def test_opus_round_trip_is_aligned_and_near_its_bit_rate(speech):
    coded = {kbps: [opus(x, 16000, kbps) for x in speech] for kbps in (6, 12)}
    assert sum(o.bits for o in coded[12]) > sum(o.bits for o in coded[6])
    for kbps, outs in coded.items():
        rate = sum(o.bits for o in outs) / sum(o.seconds for o in outs)
        # VBR speech at a target rate, Ogg / header overhead included: within a factor 1.5 of the target
        assert kbps * 1000 / 1.5 < rate < kbps * 1000 * 1.5
        for x, out in zip(speech, outs):
            assert out.wave.shape == x.shape and out.sample_rate == 16000
            # opusdec removes the pre-skip: the waveform cross-correlation peaks at lag 0 (+-1 sample)
            a, b = x.double().numpy(), out.wave.double().numpy()
            lags = range(-40, 41)
            xc = [np.dot(a[40:-40], b[40 + lag:len(b) - 40 + lag]) for lag in lags]
            assert abs(list(lags)[int(np.argmax(xc))]) <= 1


def test_bad_inputs_are_refused(speech):
    with pytest.raises(ValueError, match="mode"):
        codec2(speech[0], 16000, "999")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        codec2(speech[0] * 3, 16000, "3200")
    with pytest.raises(ValueError, match="mono"):
        opus(torch.zeros(2, 100), 16000, 6)
    with pytest.raises(ValueError, match="bit rate"):
        opus(speech[0], 16000, 2)
    with pytest.raises(TypeError, match="float"):
        codec2(torch.zeros(100, dtype=torch.int16), 16000, "3200")


def test_verdicts_compare_every_codebook_count_with_the_classic_codecs_at_no_more_bits():
    """A residual codec's report row carries a curve over k codebooks: each k is a rate of its own and
    gets its verdict against the best classic codec at no more bits (none below the cheapest codec)."""
    from eval.demo import verdicts

    rows = [
        {"tokenizer": "Codec2 700C", "classic": True, "modality": "audio", "bits_per_s": 797.0, "rate_bits_per_s": 700,
         "stoi": 0.50, "pesq": 1.20, "pesq_nb": 1.50},
        {"tokenizer": "Codec2 3200", "classic": True, "modality": "audio", "bits_per_s": 3200.0,
         "rate_bits_per_s": 3200, "stoi": 0.70, "pesq": 1.30, "pesq_nb": 1.80},
        {"tokenizer": "codec", "modality": "audio", "bits_per_s": 3000.0, "stoi": 0.72, "pesq": 1.5, "pesq_nb": 2.0,
         "curve": {"n_q": [1, 4, 15], "bits_per_s": [200.0, 800.0, 3000.0], "stoi": [0.3, 0.55, 0.72],
                   "pesq": [1.0, 1.25, 1.5], "pesq_nb": [1.1, 1.45, 2.0]}},
    ]
    lines = verdicts(rows)
    assert "- `codec` stoi 0.720 vs Codec2 700C 0.500: beats it by 0.220" in lines  # 3200 spends more bits
    assert "- `codec` from 4 codebooks (800 bit/s) pesq_nb 1.450 vs Codec2 700C 1.500: loses by 0.050" in lines
    assert "- `codec` from 4 codebooks (800 bit/s) stoi 0.550 vs Codec2 700C 0.500: beats it by 0.050" in lines
    assert not any("from 1 codebooks" in line for line in lines)  # 200 bit/s: no classic codec that cheap
    assert not any("from 15 codebooks" in line for line in lines)  # the full rate is the row itself
