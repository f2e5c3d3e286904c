"""Quantizers with one interface (see ``base.Quantizer``)."""
from .base import Quantizer, QuantizerOutput, codebook_stats
from .vq import VectorQuantizer, nearest_code
from .fsq import FSQ
