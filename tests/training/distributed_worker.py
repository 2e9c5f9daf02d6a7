"""Run by torchrun from test_distributed.py: trains with the settings given as JSON, then writes a report of what
this rank did (files it wrote, the images of its batches, its final weights) to REPORT_DIR/rank<R>.pt."""

import json
import os
import sys

import custom_parts  # (this file's folder is first on sys.path when torchrun runs it)
import torch

from dcgan import TrainConfig, train
from dcgan.training.callbacks import Callback

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def record_writes(roots: list[str], writes: list[str]) -> None:
    """An audit hook noting every file this process opens for writing, renames or deletes under `roots`."""

    def hook(event, args):
        if event == "open" and args[0] is not None:
            path, mode, flags = str(args[0]), args[1], args[2]
            writing = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
        elif event == "os.rename":  # os.replace too: (source, destination, ...)
            path, writing = str(args[1]), True
        elif event in ("os.remove", "shutil.rmtree"):
            path, writing = str(args[0]), True
        else:
            return
        if writing and any(path.startswith(root) for root in roots):
            writes.append(f"{event} {path}")

    sys.addaudithook(hook)


class BatchRecorder(Callback):
    """Wraps the run's batch source to note the shape and pixel sum of every real batch this rank trains on."""

    def __init__(self):
        self.batches = []

    def on_train_start(self, state):
        source, seen = state.setup.batches, self.batches

        class Recording:
            def epoch(self, order, coins, batch):
                for images in source.epoch(order, coins, batch):
                    seen.append((tuple(images.shape), float(images.double().sum())))
                    yield images

        state.setup.batches = Recording()


def main() -> None:
    settings, report_dir = json.loads(sys.argv[1]), sys.argv[2]
    objects = settings.pop("objects", False)  # a G, D and loss of the user's own (custom_parts.py, beside this file)
    writes: list[str] = []
    record_writes([settings["samples_dir"], settings["checkpoints_dir"]], writes)
    recorder = BatchRecorder()
    parts = custom_parts.parts(seed=0, nz=settings["nz"], size=settings["image_size"]) if objects else {}
    state = train(TrainConfig(**settings), callbacks=[recorder], **parts)
    world = state.setup.world
    report = {"rank": world.rank, "world": world.size, "writes": list(writes), "step": state.step,
              "batches": recorder.batches, "generator": state.nets.generator.state_dict(),
              "discriminator": state.nets.discriminator.state_dict(), "generator_class": state.cfg.generator}
    torch.save(report, os.path.join(report_dir, f"rank{state.setup.world.rank}.pt"))


if __name__ == "__main__":
    main()
