"""Train the GAN variants of dcgan.training.variants on the same budget; print their time and FID as a Markdown table
(the table of docs/variants.md), with the command that trains each one.

    python benchmarks/compare_variants.py --epochs 2 --image-size 32            # every variant
    python benchmarks/compare_variants.py --only dcgan,hinge --epochs 1 --limit 6400
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from dcgan.config import TrainConfig
from dcgan.device import pick_device
from dcgan.pictures.plots import save_figure
from dcgan.training.speed import speed_plan
from dcgan.training.variants import VARIANTS, compare_variants, flags_for, variants_figure, variants_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="images of the dataset used (0 = all)")
    parser.add_argument("--eval-n", type=int, default=2000, help="images a side for FID")
    parser.add_argument("--seed", type=int, default=0, help="seed of every variant (weights, noise, data order)")
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--run", default="variants", help="run name prefix")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default="", help="datasets and cache (default: the repo's data/)")
    parser.add_argument("--checkpoints-dir", default="", help="runs and the cached classifier (default: the repo's "
                        "checkpoints/)")
    parser.add_argument("--samples-dir", default="", help="the runs' grids (default: the repo's samples/)")
    parser.add_argument("--out", default="samples/variants.png", help="side-by-side figure")
    parser.add_argument("--json", default="", help="also write the rows (without images) to this file")
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name] or list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    base = TrainConfig(data=args.data, image_size=args.image_size, epochs=args.epochs, limit=args.limit,
                       eval_n=args.eval_n, eval_features="classifier", seed=args.seed, run=args.run, overwrite=True,
                       device=args.device, progress=False, data_dir=args.data_dir,
                       checkpoints_dir=args.checkpoints_dir, samples_dir=args.samples_dir)
    started = time.perf_counter()
    rows = compare_variants(base, {name: VARIANTS[name] for name in names}, log=lambda line: None)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU"
    print(f"device: {name}, {torch.get_num_threads()} threads ({speed_plan(base, device).describe()}); torch "
          f"{torch.__version__}; "
          f"{len(rows)} variants in {time.perf_counter() - started:.0f} s; FID: {rows[0]['features']}, "
          f"{args.eval_n} images a side\n")
    print(variants_table(rows))
    common = f"python -m dcgan train --data {args.data} --image-size {args.image_size} --epochs {args.epochs}" + \
        (f" --limit {args.limit}" if args.limit else "") + (f" --seed {args.seed}" if args.seed else "") + \
        f" --eval-every {args.epochs} --eval-n {args.eval_n}"
    print("\ncommands:")
    for name in names:
        print(f"  {common} --run {args.run}-{name} {flags_for(VARIANTS[name])}".rstrip())
    print(f"\nfigure: {save_figure(variants_figure(rows), Path(args.out))}")
    if args.json:
        kept = [{k: str(v) if isinstance(v, Path) else v for k, v in row.items() if k != "images"} for row in rows]
        Path(args.json).write_text(json.dumps(kept, indent=2) + "\n")  # (the last grid's path as text)


if __name__ == "__main__":
    main()
