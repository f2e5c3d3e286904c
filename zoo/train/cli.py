"""``scripts/train.py RECIPE [key=value ...] [--resume]`` (and ``python -m zoo train``).

Single process: ``python scripts/train.py recipes/titok/tiny_titok.yaml max_steps=200``.
Several processes / GPUs / nodes: ``accelerate launch --multi_gpu --num_processes N scripts/train.py ...``
or ``torchrun --nproc_per_node N [--nnodes ...] scripts/train.py ...`` (same recipe, same global batch
size, same result). Several CPU processes (gloo): the same commands with ``device=cpu``
(``accelerate launch --cpu`` starts a single process unless mpirun is configured).
"""
from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Common overrides: output_dir=DIR max_steps=N checkpoint_every=N batch_size=N "
                                       "device=cpu|cuda|auto eval_every=N lr=X model.kwargs.KEY=VALUE")
    p.add_argument("recipe", help="recipe YAML (recipes/<family>/<name>.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides (dotted keys for nested entries)")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in output_dir")
    p.add_argument("--smoke", action="store_true",
                   help="2-step CPU check of the recipe (its 'smoke' overrides shrink model and data)")
    p.add_argument("--print-recipe", action="store_true", help="print the merged recipe as JSON and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # flags may come anywhere
    from .recipe import load_recipe, load_smoke_recipe

    try:
        recipe = (load_smoke_recipe if args.smoke else load_recipe)(args.recipe, args.overrides)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_recipe:
        print(json.dumps(recipe, indent=1, default=str))
        return 0
    from ..distributed import finish_process_group
    from .trainer import train

    completed = False
    try:
        metrics = train(recipe, resume=args.resume)
        completed = True
    finally:
        finish_process_group(completed)
    final = {k: round(v, 6) for k, v in metrics.items() if k.startswith("eval/")}
    if final:
        print("final " + json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
