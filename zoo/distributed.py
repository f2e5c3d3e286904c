"""Ending a multi-process run (torchrun / accelerate launch) cleanly.

A gloo process group left to the interpreter's exit handlers can abort a rank ("terminate called
without an active exception"), and a rank that tears its connections down while a peer is still
writing or finishing a collective can take that peer with it. Commands that run under a launcher
call :func:`finish_process_group` on their way out.
"""
from __future__ import annotations

import torch.distributed as dist

__all__ = ["finish_process_group"]


def finish_process_group(completed: bool) -> None:
    """Destroy the default process group, if one is initialised.

    completed: every rank finished its work; the ranks then first meet at a barrier, so that none
    exits while another still writes its outputs. After an error (``False``) there is no barrier:
    the peers may never come.
    """
    if dist.is_available() and dist.is_initialized():
        if completed:
            dist.barrier()
        dist.destroy_process_group()
