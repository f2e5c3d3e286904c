"""Regenerate the README model table from the registry: ``python scripts/model_table.py [--check]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- model-table:begin -->", "<!-- model-table:end -->"


def _weights_and_revision(source) -> tuple[str, str]:
    """The weights column (hub link, "packaged" or "untrained") and the pinned revision (short hash)."""
    if source is None:
        return "untrained", "-"
    if source.packaged:
        return "packaged", "in the package"
    link = f"[{source.hf_repo}](https://huggingface.co/{source.hf_repo})"
    return link, f"`{source.revision[:10]}`" if source.revision else "main (unpinned)"


def model_table() -> str:
    import zoo

    rows = ["| name | modality | tokens | codebook | weights | revision | licence | published |",
            "|---|---|---|---|---|---|---|---|"]
    for name in zoo.list_tokenizers():
        info = zoo.get_info(name)
        tokens = "x".join(map(str, info.token_shape)) if info.token_shape else "-"
        if info.modality == "audio" and info.token_shape:
            tokens += " /s"
        weights, revision = _weights_and_revision(info.source)
        published = ", ".join(f"{k} {v}" for k, v in info.metrics.items()) or "-"
        codebook = info.codebook_size
        if isinstance(codebook, (tuple, list)):  # parallel codebooks: "80 x 16" rather than 80 numbers
            codebook = f"{len(codebook)} x {codebook[0]}" if len(set(codebook)) == 1 else ", ".join(map(str, codebook))
        rows.append(f"| `{name}` | {info.modality} | {tokens} | {codebook} | {weights} | {revision} | "
                    f"{info.license or '-'} | {published} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + model_table() + "\n" + readme[end:]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 when README.md is out of date")
    args = p.parse_args(argv)
    path = ROOT / "README.md"
    old = path.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md model table is out of date: run python scripts/model_table.py")
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
