"""Compare the zoo with the official implementation of a family, from a checkout you supply.

Builds each published configuration with seeded random weights on the official side, converts
its state dict with ``zoo.load_official``, checks the outputs on real photos / speech (ids equal,
floats within the stated tolerance) and times both sides in separate long-lived processes,
interleaved, under glibc's default allocator and with its thresholds raised. Writes one JSON and
one markdown file per preset, and ``rows.md`` (the README table) for the run.

Examples:
  python scripts/compare_official.py --family titok --official-src ~/src/1d-tokenizer
  python scripts/compare_official.py --family onedpiece --official-src ~/src/One-D-Piece --presets l256
  python scripts/compare_official.py --family wavtokenizer --official-src ~/src/WavTokenizer
  python scripts/compare_official.py --family flextok --official-src ~/src/ml-flextok --rounds 5
  python scripts/compare_official.py --family dmel            # the installed `dmel` package
  python scripts/compare_official.py --render out/*.json      # README rows from saved results
  python scripts/compare_official.py --render benchmarks/official/*.json --write-readme README.md

The official code is never copied into the zoo: without a checkout the script says how to get one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _parse(argv):
    from eval.official import FAMILIES
    from eval.official.protocol import ALLOCATOR_SETTINGS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(FAMILIES))
    p.add_argument("--official-src", default=None, help="checkout of the official repository (outside the zoo)")
    p.add_argument("--presets", default="all", help="comma-separated presets of the family, or 'all'")
    p.add_argument("--batch", type=int, default=None, help="inputs per call (default: the preset's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a family option, e.g. --set steps=8 --set op=encode (flextok), --set length=64 (onedpiece)")
    p.add_argument("--rounds", type=int, default=7, help="timed calls per side and allocator setting")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per side first")
    p.add_argument("--threads", type=int, default=1, help="torch / OpenMP / MKL threads of both sides")
    p.add_argument("--settings", default=",".join(ALLOCATOR_SETTINGS), help="allocator settings to run")
    p.add_argument("--seed", type=int, default=0, help="seed of the official random weights")
    p.add_argument("--out", default="compare_out", help="folder for the JSON / markdown results")
    p.add_argument("--render", nargs="+", metavar="JSON", help="only render README rows from saved results")
    p.add_argument("--write-readme", metavar="README", help="with --render: replace the comparison block of README")
    args = p.parse_args(argv)
    if args.render is None and args.family is None:
        p.error("--family is required (or --render JSON...)")
    return args


def _value(text: str):
    """``--set`` values: true / false, int, float, else the string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv=None) -> int:
    args = _parse(argv)
    from eval.official.report import render_markdown

    if args.render:
        results = [json.loads(Path(f).read_text()) for f in args.render]
        block = render_markdown(results)
        if args.write_readme:
            from eval.official.report import replace_readme_block

            path = Path(args.write_readme)
            path.write_text(replace_readme_block(path.read_text(), block))
        print(block, end="")
        return 0
    from eval.official import get_family
    from eval.official.checkout import OfficialCheckoutError, require_checkout
    from eval.official.compare import compare

    family = get_family(args.family)
    try:
        require_checkout(args.family, family.SOURCE, args.official_src)
    except (OfficialCheckoutError, ModuleNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    presets = list(family.PRESETS) if args.presets == "all" else args.presets.split(",")
    options = {} if args.batch is None else {"batch": args.batch}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --set takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        options[key] = _value(value)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, failed = [], False
    for preset in presets:
        try:
            r = compare(args.family, preset, args.official_src, rounds=args.rounds, warmup=args.warmup,
                        threads=args.threads, settings=tuple(args.settings.split(",")), seed=args.seed,
                        options=options, log=lambda m: print(m, file=sys.stderr))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        stem = f"{args.family}_{preset}_b{r['options'].get('batch', 1)}"
        (out / f"{stem}.json").write_text(json.dumps(r, indent=2))
        (out / f"{stem}.md").write_text(render_markdown([r]))
        results.append(r)
        failed |= not r["check"]["ok"]
    rows = render_markdown(results)
    (out / "rows.md").write_text(rows)
    print(rows, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
