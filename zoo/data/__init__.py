"""Datasets, transforms and the offline sample corpora (real photos and speech)."""
