"""Evaluation metrics for tokenizer reconstructions (depends on ``zoo``; ``zoo`` never imports ``eval``)."""
