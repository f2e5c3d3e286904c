"""Deterministic, resumable batch order shared by all processes.

The training data is an endless stream: stream position ``i`` is item ``perm_e[i % N]`` of
epoch ``e = i // N`` (``perm_e`` a seeded permutation) with augmentation seed ``hash(seed, i)``.
Optimizer step ``s`` consumes stream positions ``[s*G, (s+1)*G)`` (``G`` = global batch);
micro-batch ``m`` of process ``r`` takes the slice ``[(m*W + r)*b, (m*W + r + 1)*b)`` with
``b = G / (W*A)``. The order therefore depends only on the seed and the step, never on the
number of processes or workers, and resuming at step ``s`` needs nothing but ``s``.
"""
from __future__ import annotations

import hashlib

import torch

__all__ = ["StepBatchSampler", "sample_seed"]


def sample_seed(seed: int, position: int) -> int:
    """Augmentation seed of stream position ``position`` (63-bit, platform independent)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest(), "little") >> 1


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps ``start_step .. max_steps-1``, this process's ``grad_accum`` micro-batches,
    each a list of ``(item_index, augmentation_seed)`` pairs."""

    def __init__(self, num_items: int, global_batch: int, *, world_size: int = 1, rank: int = 0,
                 grad_accum: int = 1, seed: int = 0, start_step: int = 0, max_steps: int = 0):
        if num_items <= 0:
            raise ValueError("the training set is empty")
        if global_batch % (world_size * grad_accum):
            raise ValueError(f"batch_size {global_batch} must be divisible by num_processes x grad_accum "
                             f"= {world_size} x {grad_accum}")
        self.n, self.g, self.w, self.r, self.a = num_items, global_batch, world_size, rank, grad_accum
        self.b = global_batch // (world_size * grad_accum)
        self.seed, self.start, self.stop = int(seed), int(start_step), int(max_steps)
        self._perm_epoch, self._perm = -1, None

    @property
    def micro_batch(self) -> int:
        return self.b

    def _item(self, position: int) -> int:
        epoch = position // self.n
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g).tolist(), epoch
        return self._perm[position % self.n]

    def micro_batches(self, step: int) -> list[list[tuple[int, int]]]:
        """This process's micro-batches of optimizer step ``step``."""
        out = []
        for m in range(self.a):
            first = step * self.g + (m * self.w + self.r) * self.b
            out.append([(self._item(i), sample_seed(self.seed, i)) for i in range(first, first + self.b)])
        return out

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield from self.micro_batches(step)

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.a
