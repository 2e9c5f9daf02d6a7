"""dcgan: train DCGANs on faces and small images, and look at what comes out.

    from dcgan import TrainConfig, train
    state = train(TrainConfig(data="fashion-mnist", image_size=32, epochs=5, run="fm32"))
    state = train(cfg, generator=MyG(), discriminator=MyD(), loss=MyLoss())  # your own parts, everything else alike

The package is cut by concern into folders, each importing only the folders before it: data, models, pictures,
metrics, training. At the top lies what they all share (config, presets, registry, checks, errors, files, lock, paths,
device, progress) and the command line (cli). Importing the package is cheap: names are loaded on first use, and nothing
trains on import.
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "config",
    "UserError": "errors",
    "TrainingStopped": "errors",
    "train": "training.loop",
    "TrainState": "training.state",
    "Callback": "training.callbacks",
    "Loss": "models.losses",
    "register_loss": "models.losses",
    "register_generator": "models.architectures",
    "register_discriminator": "models.architectures",
    "report": "models.statistics",
    "Generator": "models.dcgan",
    "Discriminator": "models.dcgan",
    "build_models": "models.dcgan",
    "build_networks": "models.parts",
    "compare_variants": "training.variants",
    "load_image_data": "data.cache",
    "load_checkpoint": "models.checkpoint",
    "RunReference": "models.runs",
    "load_generator": "models.runs",
    "load_run": "models.runs",
    "sample": "pictures.commands",
    "generate": "pictures.sampling",
    "noise_for": "pictures.sampling",
    "grid_image": "pictures.grids",
    "save_grid": "pictures.grids",
    "history_figure": "training.history",
    "evaluate": "metrics.evaluate",
    "nearest": "metrics.nearest",
    "export": "pictures.commands",
    "read_history_csv": "training.history",
    "run_paths": "paths",
    "to_signed": "data.transforms",
    "to_unit": "data.transforms",
}

__all__ = sorted(_EXPORTS)


def load_ipython_extension(ipython) -> None:
    """`%load_ext dcgan` in a notebook: the package's mistakes and stops as one line in the parameters' words."""
    from .pictures.messages import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dcgan' has no attribute {name!r}")
