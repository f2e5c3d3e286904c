"""Shared by the image tokenizer tests: a short training run on real photos."""
import torch


def train_on_photos(tok, data: torch.Tensor, steps: int = 100, batch_size: int = 8, lr: float = 1e-3):
    """Adam on random batches of ``data``; every loss term must stay finite.

    Returns (mean losses over the first 10 steps, over the last 10 steps, last TokenizerOutput).
    """
    opt = torch.optim.Adam(tok.parameters(), lr=lr)
    history = []
    for step in range(steps):
        out = tok(data[torch.randperm(len(data))[:batch_size]])
        assert all(torch.isfinite(v) for v in out.losses.values()), step
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in out.losses.items()})
    first = {k: sum(h[k] for h in history[:10]) / 10 for k in history[0]}
    last = {k: sum(h[k] for h in history[-10:]) / 10 for k in history[0]}
    return first, last, out
