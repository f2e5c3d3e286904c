"""Training: recipes, the accelerate trainer, EMA, schedules, atomic checkpoints, resume.

>>> from zoo.train import load_recipe, train
>>> train(load_recipe("recipes/titok/tiny_titok.yaml", ["max_steps=100"]))
"""
from .recipe import load_recipe


def train(recipe: dict, resume: bool = False):
    """Run the :class:`zoo.train.trainer.Trainer` for ``recipe``; returns the last logged metrics."""
    from .trainer import train as _train

    return _train(recipe, resume=resume)


__all__ = ["load_recipe", "train"]
