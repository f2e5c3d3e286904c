"""Registry entries of the mel residual-VQ codec (zoo model, :mod:`zoo.models.mel_rvq`): the packaged
``mel_rvq_demo.demo`` and a tiny untrained one for recipes and tests."""
from __future__ import annotations

from ..registry import TokenizerInfo, register_tokenizers
from .demo_checkpoints import DATA_SPEECH, demo_notes, demo_source
from .mel_rvq import MelRVQ

#: builder kwargs of the packaged demo, identical to its config.json (tests/test_demo.py checks it)
MEL_RVQ_DEMO = dict(stack=4, num_quantizers=15, codebook_size=1024, code_dim=96, width=192, mlp_hidden=576, depth=3,
                    encoder_depth=0, vocos_width=192, vocos_mlp_hidden=576, vocos_depth=6, quantizer_dropout=True,
                    mel_weight=45.0, latent_weight=45.0, beta=0.25, search_cutoff_hz=3000.0, search_floor=0.3,
                    search_beam=16)

ENTRIES = (
    TokenizerInfo(
        name="mel_rvq_tiny.scratch", builder=MelRVQ, modality="audio", family="mel_rvq",
        kwargs=dict(stack=4, num_quantizers=4, codebook_size=256, code_dim=32, width=64, mlp_hidden=128, depth=1,
                    vocos_width=64, vocos_mlp_hidden=128, vocos_depth=2, quantizer_dropout=True),
        compression="20 positions/s x 4 codebooks x 8 bits = 640 bit/s vs 16 kHz x 16 bit (256 kbit/s)",
        license="Apache-2.0 (zoo code)",
        notes="untrained small mel residual-VQ codec for CPU recipes and tests (start it with "
              "zoo.train.mel_rvq_init.kmeans_init_mel_rvq_)"),
    TokenizerInfo(
        name="mel_rvq_demo.demo", builder=MelRVQ, modality="audio", family="mel_rvq", kwargs=dict(MEL_RVQ_DEMO),
        compression="20 positions/s x 15 codebooks x 10 bits = 3 kbit/s; decode(tokens, n_q=k) from the first k "
                    "codebooks: 200 k bit/s (800 bit/s at k = 4) vs 16 kHz x 16 bit (256 kbit/s)",
        source=demo_source("mel_rvq_demo"), license="Apache-2.0",
        metrics={"stoi_heldout": 0.763, "pesq_heldout": 1.77, "pesq_nb_heldout": 2.54, "dnsmos_ovrl_heldout": 1.36,
                 "stoi_heldout_4cb": 0.645, "pesq_heldout_4cb": 1.32, "pesq_nb_heldout_4cb": 1.83},
        notes=demo_notes(
            "mel_rvq_demo", 3000, DATA_SPEECH.format(n=1704), "21 min (2 of them the setup)",
            "Zoo design, not a published model: dMel log-mel frames in groups of 4, projected on their 96 principal "
            "directions, residual VQ with 15 codebooks of 1024 (k-means on all training utterances, then fixed), "
            "a ConvNeXt decoder refiner conditioned on the number of codebooks decoded, and the dMel Vocos vocoder "
            "(started from dmel_vocos_demo.demo); trained with quantizer dropout, log-mel L1 losses only, no GAN. "
            "Its encoder searches the ids jointly (beam 16) for the least log-mel error, mel bins above 3 kHz "
            "weighted 0.3. Metrics *_4cb: encoded for and decoded from the first 4 codebooks (800 bit/s).")),
)
register_tokenizers(ENTRIES)
