"""Package helpers behind the notebooks: figures, inline display, the MLP GAN, real samples."""

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan import train
from dcgan.data.cache import load_image_data
from dcgan.device import SIZED_FOR, sized_for_device
from dcgan.models.mlp import MLPDiscriminator, MLPGenerator
from dcgan.models.runs import RunReference, load_run
from dcgan.pictures.grids import grid_cells, grid_image
from dcgan.pictures.notebook import ShowEpochGrids, png_of
from dcgan.pictures.plots import comparison_figure, pixel_histogram, progression_figure, rows_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_mlp_gan_matches_the_write_ups_network():
    generator, discriminator = MLPGenerator(28, 100, 128, 1), MLPDiscriminator(28, 128, 1)
    assert sum(p.numel() for p in generator.parameters()) == 100 * 128 + 128 + 128 * 784 + 784
    assert sum(p.numel() for p in discriminator.parameters()) == 784 * 128 + 128 + 128 + 1
    images = generator(torch.randn(3, 100))
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    assert discriminator(images).shape == (3,)


def test_the_mlp_gan_trains_through_the_same_loop_and_resumes(small_config, tmp_path):
    state = train(small_config(arch="mlp", image_size=28, hidden=32, epochs=1), log=lambda _: None)
    assert isinstance(state.nets.generator, MLPGenerator)
    run = load_run(run="test", checkpoints_dir=str(tmp_path / "checkpoints"), device="cpu")
    assert isinstance(run.generator, MLPGenerator) and run.cfg.image_size == 28
    resumed = train(small_config(arch="mlp", image_size=28, hidden=32, epochs=2, resume=True), log=lambda _: None)
    assert resumed.epoch == 2


def test_grid_cells_recover_the_images_of_a_grid():
    levels = torch.linspace(-1, 1, 10)
    cells = grid_cells(grid_image(levels.view(10, 1, 1, 1).expand(10, 1, 32, 32), nrow=5), count=10, rows=2)
    assert len(cells) == 10 and cells[0].shape == (64, 64)
    for cell, level in zip(cells, levels.tolist()):
        assert np.all(cell == int((level + 1) / 2 * 255 + 0.5))  # a whole cell, no gap pixels


def test_figures_render(tmp_path):
    grids = []
    for epoch in range(3):
        path = tmp_path / f"epoch_{epoch:03d}.png"
        grid_image(torch.rand(10, 1, 32, 32) * 2 - 1, nrow=5).save(path)
        grids.append(path)
    figures = [progression_figure(grids), comparison_figure(torch.rand(16, 3, 32, 32), torch.rand(16, 3, 32, 32), 4),
               rows_figure([torch.rand(3, 1, 32, 32)] * 2, ["dim 5", "dim 25"], ["-3", "0", "3"], "walk"),
               pixel_histogram(np.arange(256, dtype=np.uint8))]
    for figure in figures:
        assert png_of(figure).startswith(PNG_SIGNATURE)
    assert len(figures[0].axes) == 3  # one row per epoch
    many = []
    for epoch in range(30):
        many.append(tmp_path / f"epoch_{epoch:03d}.png")
        grid_image(torch.zeros(10, 1, 32, 32), nrow=5).save(many[-1])
    labels = [axes.get_ylabel() for axes in progression_figure(many, max_rows=6).axes]
    assert labels[0] == "epoch 000" and labels[-1] == "epoch 029" and len(labels) == 6


def test_show_epoch_grids_displays_every_grid(small_config):
    shown, said, logged = [], [], []
    train(small_config(epochs=2), callbacks=[ShowEpochGrids(shown.append, said.append)], log=logged.append)
    assert [p.name for p in shown] == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert said == ["before training (epoch 0):"]  # each epoch's numbers: once, in the run's own line
    assert [line for line in logged if line.startswith("epoch 2/2: loss_D")]
    assert png_of(shown[0]).startswith(PNG_SIGNATURE)
    assert png_of(Image.new("L", (4, 4))).startswith(PNG_SIGNATURE)


def test_real_samples_are_distinct_repeatable_and_in_range(tmp_path):
    data = load_image_data("synthetic", 32, 0, tmp_path, progress=False)
    first, again, other = data.sample(16, seed=1), data.sample(16, seed=1), data.sample(16, seed=2)
    assert first.shape == (16, 3, 32, 32) and first.min() >= -1 and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert len({tuple(img.flatten()[:64].tolist()) for img in first}) == 16


def test_load_run_without_a_checkpoint_says_what_to_do(tmp_path):
    from dcgan.errors import UserError

    with pytest.raises(UserError, match="no checkpoint at .* train run 'ghost' first"):
        load_run(run="ghost", checkpoints_dir=str(tmp_path))


def test_a_notebook_loads_the_latest_run_when_its_run_has_none_and_says_so(small_config, tmp_path):
    import os

    from dcgan import train
    from dcgan.errors import UserError
    from dcgan.models.runs import load_notebook_run

    root = str(tmp_path / "checkpoints")
    with pytest.raises(UserError, match='no trained run in .*: train one first .* set checkpoints_dir = "..."'):
        load_notebook_run(RunReference("notebook-fm32", checkpoints_dir=root))
    for name in ("older", "newer"):
        train(small_config(run=name, epochs=1), log=lambda line: None)
    os.utime(tmp_path / "checkpoints" / "older" / "last.pt", (1e9, 1e9))  # written long ago
    said = []
    cfg = load_notebook_run(RunReference("notebook-fm32", checkpoints_dir=root, device="cpu"), say=said.append).cfg
    assert cfg.run == "newer" and said == [f"run 'notebook-fm32' has no checkpoint in {root}: using 'newer', the run "
                                           'written most recently there (set run = "..." to choose another)']
    cfg = load_notebook_run(RunReference("older", checkpoints_dir=root, device="cpu"), say=said.append).cfg
    assert cfg.run == "older" and len(said) == 1  # a run that exists is loaded, nothing said
    with pytest.raises(UserError, match='no checkpoint at nowhere.pt: set checkpoint = "..." to an existing file'):
        load_notebook_run(RunReference("older", checkpoint="nowhere.pt", checkpoints_dir=root))


def test_a_parameters_cell_becomes_the_config_in_one_call():
    """TrainConfig.from_namespace(globals()): the settings among a notebook's names, the rest ignored, keyword
    arguments on top; numpy numbers are taken, a value of the wrong type is one clear line."""
    from dcgan import TrainConfig, UserError

    namespace = {"data": "mnist", "epochs": np.int64(3), "lr": 1, "flip": True, "variants": ["dcgan"],
                 "torch": torch, "In": [""], "run": "nb"}
    cfg = TrainConfig.from_namespace(namespace, arch="mlp", run="from-keyword")
    assert (cfg.data, cfg.epochs, cfg.lr, cfg.flip, cfg.arch, cfg.run) == ("mnist", 3, 1.0, True, "mlp", "from-keyword")
    assert type(cfg.epochs) is int and type(cfg.lr) is float
    assert cfg.batch_size == TrainConfig().batch_size  # not in the namespace: the default
    for name, value, expected in [("epochs", "3", "epochs = '3' is not a whole number (e.g. epochs = 25)"),
                                  ("epochs", 2.5, "epochs = 2.5 is not a whole number"),
                                  ("flip", 1, "flip = 1 is not True or False"),
                                  ("lr", True, "lr = True is not a number"),
                                  ("data", None, "data = None is not a string")]:
        with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            TrainConfig.from_namespace({name: value})
    with pytest.raises(UserError, match="unknown setting\\(s\\) epoch: use the names of TrainConfig's fields"):
        TrainConfig.from_namespace(namespace, epoch=5)  # a misspelt keyword


def test_a_notebook_left_at_0_trains_what_suits_the_device_and_says_so():
    assert SIZED_FOR["cuda"]["image_size"] == 64 and SIZED_FOR["cpu"]["image_size"] == 32
    assert sized_for_device(0, 0, "cuda") == ({"image_size": 64, "epochs": 25}, "training on cuda: image size 64 "
                                              "(0: what suits a GPU), epochs 25 (0: what suits a GPU)")
    assert sized_for_device(0, 3, "cpu") == ({"image_size": 32, "epochs": 3}, "training on cpu: image size 32 "
                                             "(0: what suits a CPU), epochs 3")
    settings, line = sized_for_device(96, 40, "auto")  # given values are kept on every device
    assert settings == {"image_size": 96, "epochs": 40} and line.endswith("image size 96, epochs 40")
    assert line.startswith("training on cuda" if torch.cuda.is_available() else "training on cpu")
