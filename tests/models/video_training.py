"""Shared by the video tokenizer tests: a short training run on real photo clips."""
import time

import torch

import zoo


def train_on_photo_clips(name: str, frames: int, held_items: int, steps: int, batch_size: int) -> tuple[float, float]:
    """Adam (lr 2e-3) on ``PhotoClips(frames, 32)``; returns held-out recon loss before and after."""
    from zoo.data.video import PhotoClips

    torch.manual_seed(0)
    tok = zoo.create_tokenizer(name)
    ds = PhotoClips(frames=frames, size=32)
    held = torch.stack([ds[i] for i in range(held_items)])
    opt = torch.optim.Adam(tok.parameters(), lr=2e-3)

    def held_out_loss():
        tok.eval()
        with torch.no_grad():
            loss = tok(held).losses["recon"].item()
        tok.train()
        return loss

    before, start = held_out_loss(), time.time()
    for step in range(steps):
        picks = torch.randint(len(ds), (batch_size,))
        batch = torch.stack([ds[(int(i), step * batch_size + j)] for j, i in enumerate(picks)])
        out = tok(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = held_out_loss()
    print(f"held-out recon {before:.4f} -> {after:.4f}; {steps} steps in {time.time() - start:.1f} s")
    return before, after
