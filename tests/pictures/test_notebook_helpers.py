"""Package helpers behind the notebooks: figures, inline display, the MLP GAN, real samples."""

import io

import numpy as np
import pytest
import torch
from matplotlib.text import Text
from PIL import Image, ImageSequence

from dcgan import train
from dcgan.data.cache import load_image_data
from dcgan.device import SIZED_FOR, sized_for_device
from dcgan.models.mlp import MLPDiscriminator, MLPGenerator
from dcgan.models.runs import RunReference, load_run
from dcgan.pictures.animation import save_images_gif
from dcgan.pictures.grids import grid_cells, grid_image
from dcgan.pictures.notebook import DISPLAY_HEIGHT, DISPLAY_WIDTH, ShowEpochGrids, display_scale, png_of, show
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


def shown_bytes(monkeypatch, item) -> bytes:
    """The bytes show(item) hands to the notebook."""
    import IPython.display

    displayed = []
    monkeypatch.setattr(IPython.display, "display", displayed.append)
    show(item)
    [image] = displayed
    return image.data


def test_show_enlarges_a_small_grid_by_a_whole_factor_with_sharp_pixels(monkeypatch, tmp_path):
    path = tmp_path / "epoch_001.png"
    grid_image(torch.rand(10, 1, 32, 32) * 2 - 1, nrow=5).save(path)  # 332 x 134, as a 32x32 run writes it
    on_disk = path.read_bytes()
    with Image.open(io.BytesIO(shown_bytes(monkeypatch, path))) as shown, Image.open(path) as original:
        factor = shown.width // original.width
        assert factor >= 2 and shown.size == (original.width * factor, original.height * factor)
        assert shown.width <= DISPLAY_WIDTH < shown.width + original.width  # the largest factor that fits
        blocks = np.asarray(shown).reshape(original.height, factor, original.width, factor)
        assert (blocks == np.asarray(original)[:, None, :, None]).all()  # every block is one original pixel
    assert path.read_bytes() == on_disk  # the file keeps its own size


def test_show_leaves_large_images_and_figures_as_they_are(monkeypatch):
    large = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, DISPLAY_WIDTH - 100), dtype=np.uint8))
    assert shown_bytes(monkeypatch, large) == png_of(large)
    figure = rows_figure([torch.rand(3, 1, 32, 32)] * 2, ["a", "b"], ["-3", "0", "3"], "walk")
    assert shown_bytes(monkeypatch, figure) == png_of(figure)
    assert display_scale(DISPLAY_WIDTH // 2 + 1, 10) == 1 and display_scale(10, DISPLAY_HEIGHT // 3) == 3


def test_show_enlarges_every_frame_of_a_gif_and_keeps_it_animated(monkeypatch, tmp_path):
    path = save_images_gif([torch.full((3, 1, 8, 8), level) for level in (-1.0, 0.0, 1.0)], tmp_path / "a.gif", nrow=3)
    on_disk = path.read_bytes()
    data = shown_bytes(monkeypatch, path)
    assert data[:3] == b"GIF" and path.read_bytes() == on_disk
    with Image.open(path) as original, Image.open(io.BytesIO(data)) as shown:
        factor = display_scale(*original.size)
        assert factor > 1 and shown.size == (original.width * factor, original.height * factor)
        assert shown.n_frames == original.n_frames == 3 and shown.info.get("loop") == original.info.get("loop") == 0
        for before, after in zip(ImageSequence.Iterator(original), ImageSequence.Iterator(shown)):
            assert after.info["duration"] == before.info["duration"]
            assert after.convert("L").getpixel((factor * 5, factor * 5)) == before.convert("L").getpixel((5, 5))


def test_show_table_displays_markdown_rendered(monkeypatch):
    import IPython.display

    from dcgan.pictures.notebook import show_table

    displayed = []
    monkeypatch.setattr(IPython.display, "display", displayed.append)
    show_table("| a | b |\n|---|---|\n| 1 | 2 |")
    [table] = displayed
    assert isinstance(table, IPython.display.Markdown) and table.data.startswith("| a | b |")


def font_sizes(figure) -> list[float]:
    return [text.get_fontsize() for text in figure.findobj(Text) if text.get_text() and text.get_visible()]


def test_a_long_sweep_wraps_to_the_notebook_width_with_readable_labels():
    values = [f"{v:.1f}" for v in np.linspace(-3, 3, 20)]
    figure = rows_figure([torch.rand(20, 1, 32, 32)] * 5, [f"z[{d}]" for d in range(5)], values, "sweeps")
    with Image.open(io.BytesIO(png_of(figure))) as rendered:
        assert rendered.width <= 1000
    assert min(font_sizes(figure)) >= 10
    assert len(figure.axes) == 10  # each sweep on two lines, each line labelled under its own values
    ticks = [[label.get_text() for label in axes.get_xticklabels()] for axes in figure.axes]
    assert ticks[0] == values[:10] and ticks[1] == values[10:] and ticks[2] == values[:10]
    assert [axes.get_ylabel() for axes in figure.axes[:3]] == ["z[0]", "z[0]", "z[1]"]
    short = rows_figure([torch.rand(3, 1, 32, 32)] * 2, ["a", "b"], ["-3", "0", "3"], "walk")
    assert len(short.axes) == 2 and [t.get_text() for t in short.axes[0].get_xticklabels()] == ["", "", ""]


def test_the_pixel_histogram_counts_on_a_log_scale_and_names_the_background_share():
    images = np.zeros((10, 1, 4, 4), dtype=np.uint8)
    images[:, :, 0] = [4, 100, 200, 255]  # 12 of 16 pixels 0-3 (4 is in the next bin)
    figure = pixel_histogram(images)
    assert [axes.get_yscale() for axes in figure.axes] == ["log", "log"]
    assert "75% of the pixels are 0-3 (the background)" in figure.get_suptitle()
    with Image.open(io.BytesIO(png_of(figure))) as rendered:
        assert rendered.width <= 1000
    assert min(font_sizes(figure)) >= 10


def test_a_conditional_grid_labels_each_row_with_its_class(tmp_path):
    from dcgan.data.datasets import FASHION_MNIST
    from dcgan.training.variants import class_grid_figure

    path = tmp_path / "epoch_001.png"
    grid_image(torch.rand(100, 1, 32, 32) * 2 - 1, nrow=10).save(path)  # one row per class
    row = {"variant": "conditional", "grid": path, "classes": FASHION_MNIST.classes, "class_accuracy": 0.5}
    figure = class_grid_figure(row)
    [axes] = figure.axes
    assert [label.get_text() for label in axes.get_yticklabels()] == list(FASHION_MNIST.classes)
    assert "Ankle boot" in [label.get_text() for label in axes.get_yticklabels()]
    row_height = Image.open(path).height / 10
    assert axes.get_yticks()[9] == pytest.approx(row_height * 9.5)  # the last row's middle
    assert "class accuracy 0.500" in axes.get_title() and min(font_sizes(figure)) >= 10


def test_the_variants_figure_says_epoch_or_epochs():
    from dcgan.training.variants import epochs_each

    assert epochs_each(1) == "1 epoch each" and epochs_each(2) == "2 epochs each"
