"""``zoo tokenize``: whole datasets -> sharded, resumable Parquet token datasets (see :mod:`.run`).

Read the output with :class:`zoo.data.TokenDataset` (memory-mapped, for autoregressive training)
or ``datasets.load_dataset("parquet", data_files="OUT/part-*.parquet")``.
"""
from .run import tokenize_dataset

__all__ = ["tokenize_dataset"]
