"""Datasets, transforms and the offline sample corpora (real photos and speech).

``TokenDataset``: the output of ``zoo tokenize`` as a memory-mapped dataset (``zoo.data.TokenDataset``).
"""
from .tokens import TokenDataset

__all__ = ["TokenDataset"]
