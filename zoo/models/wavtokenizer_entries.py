"""Registry entries of the WavTokenizer family: the official checkpoints (converted on load by
``zoo.convert.wavtokenizer``), the zoo's packaged ``wavtokenizer_demo75.demo`` and untrained small ones."""
from __future__ import annotations

from ..hub import WeightSource
from ..registry import TokenizerInfo, register_tokenizers
from .demo_checkpoints import DATA_SPEECH, demo_notes, demo_source
from .wavtokenizer import WavTokenizer

_PAPER = "https://arxiv.org/abs/2408.16532"
_LICENSE = "MIT"
_FRAME = {
    # tokens/s -> encoder ratios (official `dowmsamples`, applied reversed) and ISTFT size
    40: dict(ratios=[6, 5, 5, 4], n_fft=2400, hop_length=600),
    75: dict(ratios=[8, 5, 4, 2], n_fft=1280, hop_length=320),
}
_FULL = dict(codebook_size=4096, codebook_dim=512, vocos_width=768, vocos_mlp_hidden=2304, vocos_depth=12,
             num_bandwidths=4)
_TINY = dict(codebook_size=1024, codebook_dim=512, vocos_width=64, vocos_mlp_hidden=192, vocos_depth=2,
             num_bandwidths=4,
             kmeans_iters=20)

# The exact table values (paper Table 1) could not be read offline; the official README figure
# (UTMOS vs kbps, LibriTTS test-clean) shows these. They are notes, not `metrics`, for that reason.
_PUBLISHED = {
    40: "Published (README figure, LibriTTS test-clean, WavTokenizer at 40 tokens/s): UTMOS ~3.6; "
        "PESQ/STOI: see arXiv:2408.16532 Table 1.",
    75: "Published (README figure, LibriTTS test-clean, WavTokenizer at 75 tokens/s): UTMOS ~4.05; "
        "PESQ/STOI: see arXiv:2408.16532 Table 1.",
}
_SMALL_YAML = "wavtokenizer_smalldata_frame{fps}_3s_nq1_code4096_dim512_kmeans200_attn.yaml"


def _official(*, name: str, fps: int, hf_repo: str, weights: str, data: str, revision: str | None = None,
              config: str | None = None, note: str = "") -> TokenizerInfo:
    """An official checkpoint (``weights``, with its training yaml ``config`` when the repo has one) of ``fps``
    tokens/s trained on ``data``; ``note``: where the revision comes from or what the release is."""
    files = {"weights": weights}
    if config is not None:
        files["config"] = config
    size = name.split(".")[0].split("_")[1]
    return TokenizerInfo(
        name=name, builder=WavTokenizer, modality="audio", family="wavtokenizer", kwargs={**_FULL, **_FRAME[fps]},
        compression=f"{fps} tokens/s x 12 bits = {fps * 12} bit/s vs 24 kHz x 16 bit (384 kbit/s)",
        source=WeightSource(hf_repo=hf_repo, revision=revision, files=files, converter="wavtokenizer"),
        license=_LICENSE, paper=_PAPER,
        notes=" ".join(t for t in (f"official {size} model, {fps} tokens/s, trained on {data}.",
                                    f"{note}." if note else "", _PUBLISHED[fps]) if t))


def _tiny(fps: int) -> TokenizerInfo:
    return TokenizerInfo(
        name=f"wavtokenizer_tiny_{fps}.scratch", builder=WavTokenizer, modality="audio", family="wavtokenizer",
        kwargs={**_TINY, **_FRAME[fps]}, compression=f"{fps} tokens/s x 10 bits", license="Apache-2.0", paper=_PAPER,
        notes="untrained small-width WavTokenizer (full SEANet encoder, 64-wide Vocos decoder) for CPU recipes "
              "and tests")


#: builder kwargs of the packaged demo, identical to its config.json (tests/test_demo.py checks it)
WAVTOKENIZER_DEMO75 = dict(ratios=[8, 5, 4, 2], codebook_size=1024, codebook_dim=16, n_filters=16, lstm_layers=1,
                           vocos_width=192, vocos_mlp_hidden=576, vocos_depth=6, num_bandwidths=None,
                           n_fft=1280, hop_length=320, padding="same", sample_rate=24000, kmeans_iters=20, decay=0.99,
                           threshold_ema_dead_code=0.1, commitment_weight=10.0, mel_weight=45.0,
                           pos_net_dropout=0.1, pos_net=False)

ENTRIES = (
    _official(name="wavtokenizer_small_40.libritts", fps=40, hf_repo="novateur/WavTokenizer",
              revision="8040025592781c0993deb46dc0a503579cab5f54", weights="WavTokenizer_small_600_24k_4096.ckpt",
              config=_SMALL_YAML.format(fps=40), data="LibriTTS (speech)"),
    _official(name="wavtokenizer_small_75.libritts", fps=75, hf_repo="novateur/WavTokenizer",
              revision="8040025592781c0993deb46dc0a503579cab5f54", weights="WavTokenizer_small_320_24k_4096.ckpt",
              config=_SMALL_YAML.format(fps=75), data="LibriTTS (speech)"),
    _official(name="wavtokenizer_medium_75.speech", fps=75, hf_repo="novateur/WavTokenizer-medium-speech-75token",
              revision="8858552e69270816d6aeb37bfcf3b770769d4899", weights="wavtokenizer_medium_speech_320_24k.ckpt",
              config="wavtokenizer_mediumdata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
              data="~10k h speech"),
    _official(name="wavtokenizer_medium_75.speech_v2", fps=75, hf_repo="novateur/WavTokenizer-medium-speech-75token",
              revision="8858552e69270816d6aeb37bfcf3b770769d4899",
              weights="wavtokenizer_medium_speech_320_24k_v2.ckpt",
              config="wavtokenizer_mediumdata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
              data="~10k h speech", note="second release of the medium speech model"),
    _official(name="wavtokenizer_medium_75.music_audio", fps=75,
              hf_repo="novateur/WavTokenizer-medium-music-audio-75token",
              revision="1bcbe86db88fc1f1f86c7ea192e791b3ede17da2",
              weights="wavtokenizer_medium_music_audio_320_24k.ckpt",
              config="wavtokenizer_mediumdata_music_audio_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml",
              data="~10k h music and general audio", note="revision taken from a public HF cache snapshot path"),
    _official(name="wavtokenizer_medium_75.music_audio_v2", fps=75,
              hf_repo="novateur/WavTokenizer-medium-music-audio-75token",
              weights="wavtokenizer_medium_music_audio_320_24k_v2.ckpt", data="~10k h music and general audio",
              note="no commit hash found offline: follows 'main'"),
    _official(name="wavtokenizer_large_40.unify", fps=40, hf_repo="novateur/WavTokenizer-large-unify-40token",
              weights="wavtokenizer_large_unify_600_24k.ckpt", data="~80k h speech, music and audio",
              note="repo ships no yaml (the small frame40 yaml describes it; the converter reads the architecture "
                   "from the checkpoint); uploaded in commit 7dc47a9 (full hash not found offline): follows 'main'"),
    _official(name="wavtokenizer_large_75.speech", fps=75, hf_repo="novateur/WavTokenizer-large-speech-75token",
              revision="1cc9faee31025548fbae6ffe11115d7207093638", weights="wavtokenizer_large_speech_320_24k.ckpt",
              data="~80k h speech, music and audio",
              note="first release; deleted from 'main' later, still at the pinned revision"),
    _official(name="wavtokenizer_large_75.speech_v2", fps=75, hf_repo="novateur/WavTokenizer-large-speech-75token",
              weights="wavtokenizer_large_speech_320_v2.ckpt", data="~80k h speech, music and audio",
              note="ICLR 2025 camera-ready 'large-v2' checkpoint; no commit hash found offline: follows 'main'"),
    _tiny(40),
    _tiny(75),
    TokenizerInfo(
        name="wavtokenizer_demo75.demo", builder=WavTokenizer, modality="audio", family="wavtokenizer",
        kwargs=dict(WAVTOKENIZER_DEMO75),
        compression="75 tokens/s x 10 bits = 750 bit/s vs 24 kHz x 16 bit (384 kbit/s)",
        source=demo_source("wavtokenizer_demo75"), license="Apache-2.0", paper=_PAPER,
        metrics={"stoi_heldout": 0.546, "pesq_heldout": 1.14, "pesq_nb_heldout": 1.36, "dnsmos_ovrl_heldout": 1.58},
        notes=demo_notes(
            "wavtokenizer_demo75", 8000, DATA_SPEECH.format(n=1704), "83 min",
            "Small WavTokenizer (SEANet 16 filters + 1 LSTM, 16-d EMA codebook of 1024, Vocos 192 x 6 without "
            "attention pos-net), mel L1 + commitment (weight 10) losses, no GAN, cosine LR + EMA; encoder "
            "output standardised at init (LSUV, zoo.train.lsuv via recipes/demo/wt_init.py). (A first version "
            "trained 3000 steps at a constant LR reached STOI 0.492.)")),
)
register_tokenizers(ENTRIES)
