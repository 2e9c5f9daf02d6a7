"""dcgan: train DCGANs on faces and small images, and look at what comes out.

    from dcgan import TrainConfig, train
    state = train(TrainConfig(data="fashion-mnist", image_size=32, epochs=5, run="fm32"))

Importing the package is cheap: names are loaded on first use, and nothing trains on import.
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "config",
    "UserError": "errors",
    "TrainingStopped": "errors",
    "train": "training",
    "TrainState": "training",
    "Callback": "training",
    "Generator": "models",
    "Discriminator": "models",
    "build_models": "models",
    "build_networks": "networks",
    "compare_variants": "variants",
    "load_image_data": "cache",
    "load_checkpoint": "checkpoint",
    "load_generator": "sampling",
    "generate": "sampling",
    "noise_for": "sampling",
    "grid_image": "viz",
    "save_grid": "viz",
    "history_figure": "plots",
    "read_history_csv": "history",
    "run_paths": "paths",
    "to_signed": "transforms",
    "to_unit": "transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dcgan' has no attribute {name!r}")
