"""How long each notebook takes with its default parameters, as a user runs it: papermill executes it top to bottom
from notebooks/ (kernel start included), in order, with only the three folders pointed at a fresh root (so that
the first run decodes the data and trains the Fashion-MNIST classifier, as on a new machine). Prints one Markdown
row per notebook with the conditions: the machine, torch's threads, and the load average before each notebook
(about 0 on an idle machine).

    python benchmarks/time_notebooks.py --root /tmp/notebook-times            # all, in order
    python benchmarks/time_notebooks.py --root /tmp/notebook-times --only 03  # again, with what 02 left there
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("data_dir", "samples_dir", "checkpoints_dir")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="where the notebooks' data, samples, checkpoints go")
    parser.add_argument("--only", nargs="*", default=[], help="notebook number prefixes to run (default: all)")
    args = parser.parse_args()
    import papermill

    folders = {name: str(args.root / name.removesuffix("_dir")) for name in FOLDERS}
    print(f"machine: {processor()}, {os.cpu_count()} cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads by default); Python {sys.version.split()[0]}", flush=True)
    print("| notebook | seconds | load average before |\n|---|---:|---:|", flush=True)
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        if args.only and not any(path.name.startswith(prefix) for prefix in args.only):
            continue
        load = os.getloadavg()[0]
        start = time.perf_counter()
        papermill.execute_notebook(str(path), str(args.root / f"executed-{path.name}"), parameters=folders,
                                   kernel_name="python3", cwd=str(REPO / "notebooks"), progress_bar=False)
        print(f"| `{path.stem}` | {time.perf_counter() - start:.1f} | {load:.2f} |", flush=True)


def processor() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
