"""Quantizers with one interface (see ``base.Quantizer``)."""
from .base import Quantizer, QuantizerOutput, codebook_stats
from .vq import VectorQuantizer, nearest_code
from .fsq import FSQ
from .factorized import FactorizedQuantizer
from .dual import DualCodebookQuantizer, MultiScaleResidualQuantizer, SharedMappingQuantizer
from .lfq import LookupFreeQuantizer
from .rvq import ResidualVectorQuantizer
from .rvq_search import residual_beam_search
from .perturb import LatentPerturbation, PerturbationSchedule, encode_perturbed, perturb_tokens
