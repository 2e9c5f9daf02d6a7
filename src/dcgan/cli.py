"""Command line: `python -m dcgan train|sample|evaluate|nearest|prepare ...`.

The train flags are generated from TrainConfig, so the config's help texts are the flags' help texts.
User mistakes end in one line on stderr and exit code 2; a run stopped early (SIGINT 130, SIGTERM 143, non-finite
losses 1) prints one line saying what it kept; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checks import check_number, check_path, check_places
from .config import TrainConfig, fields_with, flag, help_of, preset_settings
from .errors import TrainingStopped, UserError, first_line, out_of_memory, tells_mistakes
from .presets import PRESETS
from .registry import WEIGHTS

if TYPE_CHECKING:
    from .models.runs import RunReference

SEED = (0, 2**32 - 1)
# (lowest, highest) of the other commands' number flags; None: no upper bound (train's are its settings' limits)
COMMAND_LIMITS = {
    "sample": {"n": (1, 10_000), "nrow": (0, 10_000), "seed": SEED},
    "evaluate": {"n": (2, 1_000_000), "face_n": (1, 100_000), "seed": SEED},
    "nearest": {"n": (2, 100_000), "show": (1, 64), "seed": SEED},
    "prepare": {"min_face": (1, 100_000), "workers": (0, 1024)},
}
# The folder flags of a RunReference, for the commands that read or write there
FOLDER_FLAGS = {
    "samples_dir": "root folder of the run's pictures (default: the repo's samples/)",
    "data_dir": "folder of datasets (default: data/; a checkpoint never chooses a folder)",
}
# What to lower when a command runs out of memory
MEMORY_ADVICE = {
    "train": "lower --batch-size, --ngf / --ndf or --image-size (checkpoints already written are intact)",
    "sample": "lower --n", "evaluate": "lower --n", "nearest": "lower --n", "prepare": "lower --workers",
    "export": "use a machine with more memory (export holds one G and its checkpoint)",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (exit code 2) instead of usage + error."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; defaults are suppressed so we can tell which flags were given."""
    for spec in dataclasses.fields(TrainConfig):
        help_text = f"{help_of(spec.name)} (default: {spec.default!r})"
        if isinstance(spec.default, bool):
            parser.add_argument(f"--{flag(spec.name)}", action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(f"--{flag(spec.name)}", type=type(spec.default), default=argparse.SUPPRESS,
                                help=help_text,
                                choices=spec.metadata.get("choices"),
                                metavar=spec.name.upper() if not spec.metadata.get("choices") else None)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m dcgan", description="Train DCGANs and draw images from them.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = commands.add_parser("train", parents=[common], help="train a DCGAN (or continue one with --resume)",
                                description="Train a DCGAN. Writes samples/<run>/ and checkpoints/<run>/.")
    add_config_flags(train)
    train.add_argument("--preset", default="", choices=sorted(PRESETS), help="start from a named recipe; flags "
                       "given explicitly override it: " + "; ".join(f"{name}: {text}" for name, (text, _) in
                                                                     PRESETS.items()))

    sample = commands.add_parser("sample", parents=[common], help="draw new images from a trained run's checkpoint",
                                 description="Draw images from a checkpoint into one PNG grid.")
    add_reference_flags(sample, "samples_dir")
    sample.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    sample.add_argument("--seed", type=int, default=0, help="noise seed: the same seed draws the same images "
                        "(default: 0)")
    sample.add_argument("--nrow", type=int, default=0, help="images per grid row (default: 0 = about square)")
    sample.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                        help="conditional runs: draw only class K (default: one row per class)")
    sample.add_argument("--out", default="", help="PNG file to write (default: samples/<run>/sample_seed<seed>.png)")
    evaluate = commands.add_parser("evaluate", parents=[common], help="FID, KID, precision and recall of a run",
                                   description="Compare N generated images with N real ones of the run's dataset; "
                                   "writes checkpoints/<run>/eval_<epoch>.json.")
    add_reference_flags(evaluate, "data_dir")
    evaluate.add_argument("--n", type=int, default=10000, help="images on each side (default: 10000)")
    add_feature_flags(evaluate)
    evaluate.add_argument("--faces", default="auto", choices=("auto", "anime", "human", "none"),
                          help="face rate with a face detector; auto: for the anime and celeba datasets "
                          "(default: auto)")
    evaluate.add_argument("--face-n", type=int, default=1000, help="images a side for the face rate "
                          "(default: 1000)")
    add_measuring_flags(evaluate)

    nearest = commands.add_parser("nearest", parents=[common], help="memorization check: generated images "
                                  "next to their nearest training images",
                                  description="Match N generated images with their nearest training images (in "
                                  "feature and pixel space) and compare the distances with real images the model "
                                  "never saw; writes samples/<run>/nearest.png and checkpoints/<run>/"
                                  "nearest_<epoch>.json.")
    add_reference_flags(nearest, "samples_dir", "data_dir")
    nearest.add_argument("--n", type=int, default=1000, help="generated images, and as many baseline real images "
                         "(default: 1000)")
    nearest.add_argument("--show", type=int, default=8, help="closest pairs drawn in nearest.png (default: 8)")
    add_feature_flags(nearest)
    add_measuring_flags(nearest)

    export = commands.add_parser("export", parents=[common], help="a run's generator as a folder to share "
                                 "(safetensors, config.json, model card)",
                                 description="Write G of a run's checkpoint to DIR as model.safetensors (weights "
                                 "only, no pickle) and config.json, the layout of Hugging Face's "
                                 "PyTorchModelHubMixin, with samples.png and a model card (README.md). sample, "
                                 "evaluate, nearest and the notebooks load such a folder with --checkpoint DIR.")
    add_reference_flags(export, device="cpu")
    export.add_argument("--out", required=True, metavar="DIR", help="folder to write (made when missing; an earlier "
                        "export there is replaced)")

    prepare = commands.add_parser("prepare", parents=[common], help="make a training folder from raw pictures, "
                                  "cropping faces", description="Write square training images from the pictures "
                                  "under SRC into DST: one crop per face found (--crop-faces), else a centre crop.")
    prepare.add_argument("src", metavar="SRC", help="folder of raw illustrations or photos (searched recursively)")
    prepare.add_argument("dst", metavar="DST", help="folder to write the training images into")
    prepare.add_argument("--crop-faces", default="", choices=("anime", "human"),
                         help="detect faces (anime: animeface package; human: OpenCV Haar cascade) and crop each")
    prepare.add_argument("--size", type=int, default=96, help="side of the written images in pixels (default: 96)")
    prepare.add_argument("--margin", type=float, default=0.25, help="extra room on each side of a face, as a share "
                         "of its size (default: 0.25)")
    prepare.add_argument("--min-face", type=int, default=32, help="skip faces smaller than this many pixels "
                         "(default: 32)")
    prepare.add_argument("--workers", type=int, default=0, help="processes (default: 0 = one per core)")
    prepare.add_argument("--overwrite", action="store_true", help="write into a DST that already holds files")
    prepare.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                         help="show a progress bar (default: on)")
    return parser


def add_feature_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features", default="auto", choices=("auto", "classifier", "inception"),
                        help="feature space: inception = the standard FID Inception-v3 (downloaded when missing); "
                        "classifier = a CNN trained on the labelled dataset, cached in checkpoints/_classifiers/; "
                        "auto = Inception when its weights are on disk, else the classifier (default: auto)")
    parser.add_argument("--inception-weights", default="", metavar="PATH",
                        help="the Inception weights file (default: $TORCH_HOME/hub/checkpoints/"
                        "weights-inception-2015-12-05-6726825d.pth)")


def add_reference_flags(parser: argparse.ArgumentParser, *folders: str, device: str = "auto") -> None:
    """The flags of the RunReference that sample, evaluate, nearest and export load (see run_reference): which
    run, which of its weights, on which device, and the folders among FOLDER_FLAGS the command uses."""
    parser.add_argument("--run", default="", help="run name: uses checkpoints/<run>/last.pt")
    parser.add_argument("--checkpoint", default="", help="a specific checkpoint file (instead of --run's last.pt), "
                        "or a folder written by export")
    parser.add_argument("--checkpoints-dir", default="", help="root folder of checkpoints (default: the repo's "
                        "checkpoints/)")
    for name in folders:
        parser.add_argument(f"--{flag(name)}", default="", help=FOLDER_FLAGS[name])
    parser.add_argument("--weights", default="auto", choices=WEIGHTS.names, help="auto: the moving average of G "
                        "when the run kept one (--ema), else G's own weights; ema or raw: those, or an error (an "
                        "exported folder holds one of them) (default: auto)")
    parser.add_argument("--device", default=device, choices=("auto", "cpu", "cuda"),
                        help=f"where to run G (default: {device})")


def run_reference(args: argparse.Namespace) -> RunReference:
    """The RunReference the flags of add_reference_flags name (a folder flag the command lacks stays empty)."""
    from .models.runs import RunReference

    return RunReference(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(RunReference)
                           if hasattr(args, spec.name)})


def add_measuring_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="picks the real images and the noise (default: 0)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="show progress bars (default: on)")


def check_command_flags(args: argparse.Namespace) -> None:
    """The number and path flags of every command but train (whose flags TrainConfig checks; the run flags are
    RunReference's)."""
    for name, (low, high) in COMMAND_LIMITS.get(args.command, {}).items():
        check_number(name, getattr(args, name), low, high)
    check_places(args, fields_with("place", "folder"), fields_with("place", "file"))
    if getattr(args, "out", None):
        check_path("--out", args.out)
    if args.command == "sample" and args.out and Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a folder: name the PNG file to write, e.g. {Path(args.out) / 'grid.png'}")


def run_evaluate(args: argparse.Namespace) -> None:
    from .metrics.evaluate import evaluate, result_table

    result = evaluate(run_reference(args), n=args.n, features=args.features, seed=args.seed, progress=args.progress,
                      inception_weights=args.inception_weights, faces=args.faces, face_n=args.face_n)
    print(result_table(result))
    print(f"wrote {result['path']}")


def run_nearest(args: argparse.Namespace) -> None:
    from .metrics.nearest import nearest, nearest_table

    result = nearest(run_reference(args), n=args.n, features=args.features, show=args.show, seed=args.seed,
                     progress=args.progress, inception_weights=args.inception_weights)
    print(nearest_table(result))
    print(f"wrote {result['figure']} and {result['path']}")


def run_export(args: argparse.Namespace) -> None:
    from .pictures.commands import export

    export(run_reference(args), args.out)


def run_prepare(args: argparse.Namespace) -> None:
    from .data.prepare import prepare

    summary = prepare(args.src, args.dst, args.crop_faces, args.size, args.margin, args.min_face, args.workers,
                      args.overwrite, args.progress)
    print("\n".join(summary.lines()))
    print(f"wrote {summary.written:,} images of {args.size}x{args.size} to {args.dst}")


def train_config(given: dict[str, Any], preset: str = "") -> TrainConfig:
    """The config for `train`: flags over the preset over defaults (with --resume, train puts the settings not
    given over the run's saved config: TrainConfig.over_saved)."""
    return TrainConfig(**{**(preset_settings(preset) if preset else {}), **given})


def run_train(args: argparse.Namespace) -> None:
    from .training.loop import train

    given = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig)
             if hasattr(args, spec.name)}
    preset = preset_settings(args.preset) if args.preset else {}
    train(train_config(given, args.preset), flags=set(preset) | set(given))


def run_sample(args: argparse.Namespace) -> None:
    from .pictures.commands import sample

    reference = run_reference(args)
    out = sample(reference, n=args.n, seed=args.seed, nrow=args.nrow, class_index=args.class_index, out=args.out)
    print(f"wrote {args.n} images from {reference.shown} to {out}")


def check_temporary_folder() -> None:
    """A one-line UserError when no temporary folder is writable: torch asks for one while it is imported."""
    try:
        tempfile.gettempdir()
    except FileNotFoundError as error:  # "No usable temporary directory found in [...]"
        tmpdir = os.environ.get("TMPDIR") or "unset"
        raise UserError(f"no writable temporary folder (TMPDIR={tmpdir}, /tmp, /var/tmp, /usr/tmp and the working "
                        "directory all fail): set TMPDIR to a writable folder") from error


def told(error: UserError, args: argparse.Namespace) -> int:
    """A mistake as one line on stderr (under torchrun, by the first process only), exit code 2; with --debug, the
    error itself with its traceback."""
    if args.debug:
        raise error
    if tells_mistakes(args.command):
        print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        check_temporary_folder()  # before anything imports torch, which needs one
    except UserError as error:
        return told(error, args)
    try:
        if args.command != "train":
            check_command_flags(args)
        {"train": run_train, "sample": run_sample, "evaluate": run_evaluate, "nearest": run_nearest,
         "export": run_export, "prepare": run_prepare}[args.command](args)
    except BrokenPipeError:  # stdout closed (`... | head`): end quietly
        from .training.signals import silence_stdout

        silence_stdout()
        return 141
    except (MemoryError, RuntimeError) as error:  # the one place where running out of memory becomes a line
        if args.debug or not out_of_memory(error):
            raise
        print(f"error: out of memory in {args.command} ({first_line(error)[:160]}): {MEMORY_ADVICE[args.command]}",
              file=sys.stderr)
        return 2
    except UserError as error:
        return told(error, args)
    except TrainingStopped as stop:  # a signal or non-finite losses: the message says what was saved
        if args.debug:
            raise
        if str(stop):
            print(str(stop), file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
