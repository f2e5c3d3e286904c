"""Evaluation metrics for tokenizer reconstructions (depends on ``zoo``; ``zoo`` never imports ``eval``).

Modules: ``fid`` (rFID, Inception 2015-12-05), ``pfid`` (perturbed FID), ``image`` (PSNR, SSIM,
MS-SSIM, LPIPS), ``usage`` (codebook usage, perplexity, per-position entropy), ``video``
(per-frame fidelity), ``fvd`` (I3D FVD), ``audio`` / ``utmos`` / ``dnsmos`` (speech metrics),
``report`` (report.json / report.md / figures), ``run`` (``scripts/evaluate.py``).
"""
