"""rFID feature-extraction throughput and FlexTok flex-attention vs SDPA (see eval/gpu_probes.py).

  python scripts/gpu_probes.py --device cuda --out probes.json
  python scripts/gpu_probes.py --device cpu --fid-batch 4 --flextok flextok_tiny.untrained --out probes.json  (dry run)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from eval.gpu_probes import fid_feature_throughput, flextok_attention

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="fp32,bf16", help="comma-separated precisions")
    p.add_argument("--fid-batch", type=int, default=64)
    p.add_argument("--flextok", default="flextok_d12_d12.in1k", help="FlexTok registry name (random weights)")
    p.add_argument("--flextok-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="probes.json")
    args = p.parse_args(argv)
    rows = []
    for dtype in args.dtype.split(","):
        rows.append(fid_feature_throughput(args.device, args.fid_batch, repeats=args.repeats, dtype=dtype))
        print(rows[-1], flush=True)
        for row in flextok_attention(args.flextok, args.device, args.flextok_batch, repeats=args.repeats, dtype=dtype):
            rows.append(row)
            print(row, flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
