"""Command line: ``python -m zoo {list,info,encode,decode,reconstruct,tokenize,convert,export,package,train}``
plus the commands other installed packages add (``eval`` and ``demo`` from this project's ``eval``).

Tokens are written as ``.pt`` (``Tokens.state()``: ids plus what decode needs, loaded with
``weights_only=True``) or ``.npy`` (ids only).

Plugin commands: a package adds ``zoo NAME ...`` by declaring an entry point ``NAME = "module:main"``
in the group :data:`COMMAND_GROUP` (``main(argv) -> exit status`` gets the arguments after NAME).
``zoo`` itself never imports them: ``eval`` (evaluation and the demo, which depend on ``zoo``)
registers ``eval`` and ``demo`` in ``pyproject.toml``, so they exist once the project is installed
(``pip install -e .``; ``make`` does it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "plugin_commands", "COMMAND_GROUP"]

#: entry-point group of the subcommands other packages add to ``zoo``
COMMAND_GROUP = "tokenizer_zoo.commands"


def _tokenizer(args):
    from .source import parse_source

    tok = parse_source(args.tokenizer).load(pretrained=args.pretrained, weights=args.weights)
    return tok.to(args.device).eval()


def _read_signal(tok, args):
    """The input file as a batch of one on ``args.device``, after the tokenizer's input protocol
    (``zoo.modality``); prints what was done to the file."""
    protocol = tok.modality.protocol(tok, size=getattr(args, "size", None), strict=args.strict_input)
    x, note = tok.modality.load(Path(args.input), protocol)
    print(f"{args.input}: {note}")
    return x[None].to(args.device)


def _save_tokens(tokens, path: Path) -> None:
    import numpy as np
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, tokens.ids.cpu().numpy())
    else:
        torch.save(tokens.state(), path)


def _load_tokens(path: Path):
    import numpy as np
    import torch

    from .api import Tokens

    if path.suffix == ".npy":
        return Tokens(torch.from_numpy(np.load(path, allow_pickle=False)).long())
    return Tokens.from_state(torch.load(path, map_location="cpu", weights_only=True))


def cmd_list(args) -> int:
    import zoo

    names = zoo.list_tokenizers(filter=args.filter, modality=args.modality, family=args.family,
                                pretrained=True if args.pretrained else None)
    for n in names:
        info = zoo.get_info(n)
        print(f"{n:40s} {info.modality:6s} {'weights' if info.pretrained else 'untrained':10s} {info.family}")
    return 0


def cmd_info(args) -> int:
    import zoo

    print(zoo.get_info(args.name).describe())
    return 0


def cmd_encode(args) -> int:
    tok = _tokenizer(args)
    tokens = tok.encode(_read_signal(tok, args))
    _save_tokens(tokens, Path(args.output))
    print(f"{args.input}: {tuple(tokens.ids.shape)} tokens -> {args.output}")
    return 0


def cmd_decode(args) -> int:
    tok = _tokenizer(args)
    x = tok.decode(_load_tokens(Path(args.input)))
    tok.modality.write(Path(args.output), x, tok)
    print(f"{args.input} -> {args.output}")
    return 0


def cmd_reconstruct(args) -> int:
    tok = _tokenizer(args)
    x = tok.reconstruct(_read_signal(tok, args))
    tok.modality.write(Path(args.output), x, tok)
    print(f"{args.input} -> {args.output}")
    return 0


def cmd_tokenize(args) -> int:
    from .tokenize import tokenize_dataset

    manifest = tokenize_dataset(args.tokenizer, args.input, args.output_dir, pretrained=args.pretrained,
                                weights=args.weights, batch_size=args.batch_size, num_workers=args.num_workers,
                                shard_size=args.shard_size, device=args.device, dtype=args.dtype,
                                resume=args.resume, flip=args.flip, ten_crop=args.ten_crop, size=args.size,
                                strict_input=args.strict_input, progress=not args.quiet)
    return 0 if "rank" in manifest or manifest["num_errors"] == 0 or not args.fail_on_error else 1


def cmd_convert(args) -> int:
    import zoo

    tok = zoo.load_official(args.family, args.state_dict, args.config)
    tok.save_pretrained(args.out)
    print(f"converted {args.family} checkpoint -> {args.out} (zoo format; load with zoo.from_pretrained)")
    return 0


def cmd_export(args) -> int:
    import torch

    from .export import ExportError, export_onnx
    from .source import parse_source

    source = parse_source(args.tokenizer)
    info = source.registry_info()  # None for a zoo-format folder (it always carries its weights)
    use_weights = args.weights is not None or (info is not None and info.pretrained and not args.random_weights)
    torch.manual_seed(args.seed)
    tok = source.load(pretrained=use_weights, weights=args.weights)
    parts = tuple(p for p in args.parts.split(",") if p)
    try:
        meta = export_onnx(tok, args.out, name=args.tokenizer, parts=parts, opset=args.opset)
    except ExportError as e:
        print(f"zoo export: {e}", file=sys.stderr)
        return 2
    files = ", ".join(g["file"] for g in meta["graphs"].values())
    print(f"{args.tokenizer} -> {args.out}: {files}, metadata.json (opset {meta['opset']}, "
          f"weights sha256 {meta['weights_sha256'][:12]})")
    return 0


def cmd_package(args) -> int:
    from .train.package import run

    try:
        return run(args)
    except ValueError as e:
        print(f"zoo package: {e}", file=sys.stderr)
        return 2


def plugin_commands() -> dict:
    """Subcommands declared by installed packages: name -> ``importlib.metadata.EntryPoint``."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}


def cmd_train(argv: list[str]) -> int:
    from .train.cli import main as train_main

    return int(train_main(argv) or 0)


def build_parser() -> argparse.ArgumentParser:
    from .source import SOURCE_HELP

    p = argparse.ArgumentParser(prog="zoo", description="Tokenizer Zoo: discrete image, video and audio tokenizers")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered tokenizers")
    s.add_argument("filter", nargs="?", help="glob, e.g. 'titok*'")
    s.add_argument("--modality", choices=["image", "video", "audio"])
    s.add_argument("--family")
    s.add_argument("--pretrained", action="store_true", help="only entries with weights")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("info", help="metadata of one tokenizer")
    s.add_argument("name")
    s.set_defaults(fn=cmd_info)

    for name, fn, helptext in (("encode", cmd_encode, "signal file -> tokens (.pt or .npy)"),
                               ("decode", cmd_decode, "tokens file -> signal file"),
                               ("reconstruct", cmd_reconstruct, "signal file -> reconstructed signal file")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("tokenizer", help=SOURCE_HELP)
        s.add_argument("input")
        s.add_argument("output")
        s.add_argument("--pretrained", action="store_true", help="load the registry entry's weights")
        s.add_argument("--weights", help="local folder or file with the registry entry's weights")
        s.add_argument("--device", default="cpu")
        if name != "decode":
            s.add_argument("--size", type=int, help="image / frame side to resize + centre-crop to (tokenizers "
                           "that take several sizes; default: the tokenizer's own input size, or the file's)")
            s.add_argument("--strict-input", action="store_true", help="refuse a file that does not already "
                           "match the tokenizer's input (size, channels, sample rate) instead of converting it")
        s.set_defaults(fn=fn)

    s = sub.add_parser("tokenize", help="a whole dataset -> sharded Parquet token ids (torchrun for several "
                       "processes / nodes)")
    s.add_argument("tokenizer", help=SOURCE_HELP)
    s.add_argument("input", help="folder (class sub-folders -> labels), .jsonl manifest of {path, label}, or "
                   "WebDataset .tar path / glob / {000..009} pattern")
    s.add_argument("output_dir")
    s.add_argument("--pretrained", action="store_true", help="load the registry entry's weights")
    s.add_argument("--weights", help="local folder or file with the registry entry's weights")
    s.add_argument("--batch-size", type=int, default=32, help="items per encode call (equal shapes only)")
    s.add_argument("--num-workers", type=int, default=None, help="DataLoader reader processes (default min(4, CPUs))")
    s.add_argument("--shard-size", type=int, default=1000, help="inputs per Parquet shard")
    s.add_argument("--device", default=None, help="default: cuda when available (cuda:LOCAL_RANK per rank)")
    s.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="encode precision (autocast)")
    s.add_argument("--resume", action="store_true", help="continue a killed run: completed shards are kept")
    s.add_argument("--flip", action="store_true", help="also tokenize the mirrored image (column view)")
    s.add_argument("--ten-crop", action="store_true", help="4 corner + centre crops of the image resized to 1.1x "
                   "the input size, and their mirrors (column view)")
    s.add_argument("--size", type=int, help="image / frame side for tokenizers that take several sizes")
    s.add_argument("--strict-input", action="store_true", help="record files that do not already match the "
                   "tokenizer's input as errors instead of converting them")
    s.add_argument("--fail-on-error", action="store_true", help="exit with status 1 when errors.jsonl is not empty")
    s.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    s.set_defaults(fn=cmd_tokenize)

    s = sub.add_parser("convert", help="official checkpoint -> zoo-format folder")
    s.add_argument("family", help="converter name (zoo.list_converters())")
    s.add_argument("--state-dict", help="official weights file")
    s.add_argument("--config", help="official config file (json / yaml)")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_convert)

    s = sub.add_parser("export", help="tokenizer -> encoder.onnx + decoder.onnx + metadata.json")
    s.add_argument("tokenizer", help=SOURCE_HELP + " (TiTok / One-D-Piece, WavTokenizer, dMel)")
    s.add_argument("out", help="output folder")
    s.add_argument("--format", choices=["onnx"], default="onnx")
    s.add_argument("--weights", help="local folder or file with the registry entry's weights")
    s.add_argument("--random-weights", action="store_true",
                   help="export the architecture with seeded random weights (no download), e.g. for benchmarks")
    s.add_argument("--seed", type=int, default=0, help="seed of --random-weights")
    s.add_argument("--parts", default="encoder,decoder", help="encoder,decoder (default) or one of them")
    s.add_argument("--opset", type=int, default=18)
    s.set_defaults(fn=cmd_export)

    from .train import package

    s = sub.add_parser("package", help="finished training run -> shipped zoo-format folder (EMA weights, "
                       "float16 parameters, training log)", description=package.__doc__.split("\n\n")[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    package.add_arguments(s)
    s.set_defaults(fn=cmd_package)

    s = sub.add_parser("train", help="scripts/train.py RECIPE [key=value ...] [--resume]", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    #: plugin commands (a name of the zoo's own commands is never taken over)
    p.plugins = {name: ep for name, ep in sorted(plugin_commands().items()) if name not in sub.choices}
    for name, ep in p.plugins.items():
        s = sub.add_parser(name, help=f"from {ep.value} ('zoo {name} --help' for its options)", add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
    p.epilog = (f"Commands of other installed packages come from the '{COMMAND_GROUP}' entry-point group "
                "(this project's eval and demo commands once it is installed: pip install -e .).")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    parser = build_parser()
    if argv and argv[0] in parser.plugins:  # the plugin parses its own arguments
        return int(parser.plugins[argv[0]].load()(argv[1:]) or 0)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
