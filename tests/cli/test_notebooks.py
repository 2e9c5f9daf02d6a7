"""Every notebook runs top to bottom headless on the CPU with small parameters, on real Fashion-MNIST,
and writes the files it promises; committed notebooks carry no outputs."""

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from dcgan import TrainConfig
from dcgan.training.history import read_history_csv
from tests.helpers import REPO, gif_frames

pytestmark = pytest.mark.slow

# the test extra installs them; a GPU machine without them (`pytest -m cuda` there) skips this file
nbformat, papermill = pytest.importorskip("nbformat"), pytest.importorskip("papermill")
nbconvert = pytest.importorskip("nbconvert")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAMES = ["00_gan_basics", "01_explore_data", "02_train_dcgan", "03_generate_and_compare", "04_latent_space",
         "05_variants", "06_your_own_gan"]


def test_the_numbered_notebooks_exist():
    assert [path.stem for path in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs_and_follow_the_conventions(path):
    notebook = json.loads(path.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} holds outputs: strip them"
    assert "".join(code[0]["source"]) == "%load_ext autoreload\n%autoreload 2\n%load_ext dcgan"  # one-line errors
    assert "parameters" in code[1].get("metadata", {}).get("tags", []), "second code cell must be tagged parameters"
    assert "device = \"auto\"" in "".join(code[1]["source"]) or "device" not in "".join(code[1]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_understands_every_parameter(path):
    """Each assignment in the parameters cell is seen by papermill (so injected values are checked by name)."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines() if re.match(r"^\w+ *=", line)}
    assert set(papermill.inspect_notebook(str(path))) == assigned


@pytest.fixture(scope="module")
def folders(tmp_path_factory, fashion_mnist_available):
    root = tmp_path_factory.mktemp("notebooks")
    return {"data_dir": str(root / "data"), "samples_dir": str(root / "samples"),
            "checkpoints_dir": str(root / "checkpoints")}


def run_notebook(name, folders, tmp_path_factory, **parameters):
    out = tmp_path_factory.mktemp("executed") / f"{name}.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(REPO / "notebooks"), progress_bar=False)
    return nbformat.read(out, as_version=4)


def images_shown(notebook):
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def gifs_shown(notebook):
    return sum("image/gif" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def sizes_shown(notebook) -> list[tuple[int, int]]:
    """The pixel size of every image (PNG or GIF) the notebook shows, in order."""
    import base64
    import io

    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(output["data"][kind]))).size for cell in notebook.cells
            for output in cell.get("outputs", []) for kind in ("image/png", "image/gif")
            if kind in output.get("data", {})]


def markdown_shown(notebook) -> str:
    return "".join(output.get("data", {}).get("text/markdown", "") for cell in notebook.cells
                   for output in cell.get("outputs", []))


def test_00_gan_basics(folders, tmp_path_factory):
    notebook = run_notebook("00_gan_basics", folders, tmp_path_factory, limit=1280, epochs=2, hidden=32,
                            device="cpu", run="nb-mlp", **folders)
    samples = Path(folders["samples_dir"]) / "nb-mlp"
    assert {"epoch_000.png", "epoch_001.png", "epoch_002.png", "losses.png", "real.png"} <= {
        p.name for p in samples.iterdir()}
    assert (Path(folders["checkpoints_dir"]) / "nb-mlp" / "last.pt").is_file()
    assert images_shown(notebook) >= 1 + 3 + 3  # the toy GAN, three epoch grids, curves, progression, 64 samples
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    drawn = [float(value) for value in re.search(r"G draws: \[(.*)\] for the pattern 1010", text).group(1).split(",")]
    assert drawn[0] > 0.6 and drawn[1] < 0.4 and drawn[2] > 0.6 and drawn[3] < 0.4  # G has learned "1010"


def test_01_explore_data(folders, tmp_path_factory):
    notebook = run_notebook("01_explore_data", folders, tmp_path_factory, image_size=32, count=16,
                            data_dir=folders["data_dir"])
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "60,000 images at 32x32, 1 channel" in text
    assert "round trip exact: True" in text and "Ankle boot: 6,000" in text
    assert images_shown(notebook) == 3  # grid, histograms, flips
    assert all(width <= 1000 for width, _ in sizes_shown(notebook))  # none scaled down to the notebook's column
    assert list((Path(folders["data_dir"]) / ".cache").glob("*.u8"))


@pytest.fixture(scope="module")
def trained_run(folders, tmp_path_factory):
    notebook = run_notebook("02_train_dcgan", folders, tmp_path_factory, image_size=32, epochs=2, batch_size=64,
                            ngf=16, ndf=16, limit=640, log_every=5, run="nb-dcgan", device="cpu", **folders)
    return notebook


def test_02_train_dcgan(trained_run, folders):
    samples = Path(folders["samples_dir"]) / "nb-dcgan"
    checkpoints = Path(folders["checkpoints_dir"]) / "nb-dcgan"
    assert {"real.png", "epoch_000.png", "epoch_001.png", "epoch_002.png", "losses.png"} <= {
        p.name for p in samples.iterdir()}
    assert {"epoch_001.pt", "epoch_002.pt", "last.pt", "config.json", "history.csv"} <= {
        p.name for p in checkpoints.iterdir()}
    assert images_shown(trained_run) == 3 + 2  # epochs 0-2 inline, then curves and progression
    assert gifs_shown(trained_run) == 1  # training as an animation: progress.gif, one frame per epoch grid
    assert len(gif_frames(samples / "progress.gif")) == 3
    text = "".join(output.get("text", "") for cell in trained_run.cells for output in cell.get("outputs", []))
    assert f"checkpoints: {checkpoints}" in text
    assert "training on cpu: image size 32, epochs 2\n" in text  # the size the parameters asked for, said
    for epoch in (1, 2):  # one line per epoch; no bar kept as a widget, which a saved file shows at 0 %
        assert sum(line.startswith(f"epoch {epoch}/2") for line in text.splitlines()) == 1
    assert not [output for cell in trained_run.cells for output in cell.get("outputs", [])
                if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    html, _ = nbconvert.HTMLExporter().from_notebook_node(trained_run)  # an export reads as finished too
    assert "epoch 2/2: loss_D" in html
    assert not re.search(r"(?<!\d)0%\|", html)
    saved = json.loads((checkpoints / "config.json").read_text())  # the injected parameters reached the run
    assert (saved["ngf"], saved["ndf"], saved["limit"], saved["log_every"], saved["batch_size"]) == (16, 16, 640, 5, 64)


def test_02_takes_every_setting_from_its_parameters_cell_in_one_call():
    """Each name in 02's parameters cell is a TrainConfig setting and reaches the config through one call, so a
    new knob is one line in the parameters cell and nothing else."""
    path = REPO / "notebooks" / "02_train_dcgan.ipynb"
    assert set(papermill.inspect_notebook(str(path))) <= {spec.name for spec in dataclasses.fields(TrainConfig)}
    code = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")
    assert "TrainConfig.from_namespace(globals(), **sizes)" in code and "TrainConfig(" not in code


def test_02_resumes_with_the_same_run_name(trained_run, folders, tmp_path_factory):
    run_notebook("02_train_dcgan", folders, tmp_path_factory, image_size=32, epochs=3, batch_size=64, ngf=16,
                 ndf=16, limit=640, log_every=5, run="nb-dcgan", device="cpu", resume=True, **folders)
    assert (Path(folders["checkpoints_dir"]) / "nb-dcgan" / "epoch_003.pt").is_file()


def share_classifier(tiny_classifier, folders):
    """Put the session's trained classifier where the notebooks look, rather than training a second one."""
    from dcgan.metrics.classifier import classifier_file

    _, _, _, classifier_root = tiny_classifier
    cached = classifier_file("fashion-mnist", Path(folders["checkpoints_dir"]))
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(classifier_file("fashion-mnist", classifier_root / "checkpoints"), cached)


def test_03_generate_and_compare(trained_run, folders, tmp_path_factory, tiny_classifier):
    share_classifier(tiny_classifier, folders)
    notebook = run_notebook("03_generate_and_compare", folders, tmp_path_factory, run="nb-dcgan", count=16,
                            device="cpu", eval_n=200, nearest_n=100, **folders)
    assert (Path(folders["samples_dir"]) / "nb-dcgan" / "compare.png").stat().st_size > 0
    assert (Path(folders["samples_dir"]) / "nb-dcgan" / "nearest.png").stat().st_size > 0
    [written] = (Path(folders["checkpoints_dir"]) / "nb-dcgan").glob("eval_*.json")
    saved = json.loads(written.read_text())
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert re.search(rf"FID \(Fashion-MNIST classifier\) +{saved['fid']:.3f}\n", text) and "pixels (RMS)" in text
    assert re.search(rf"\n    real vs real, n = 200 +{saved['real_vs_real_fid']:.3f}\n", text)  # its scale, beneath
    assert "KID (MMD^2, not x 1000)" in text and "one subset: n = 200" in text and "+-" not in text  # 200 < 1,000
    assert images_shown(notebook) == 2


def test_04_latent_space(trained_run, folders, tmp_path_factory):
    notebook = run_notebook("04_latent_space", folders, tmp_path_factory, run="nb-dcgan", steps=5, sweep_steps=6,
                            walk_count=2, rank_n=4, loops=2, loop_points=3, loop_steps=4, device="cpu",
                            samples_dir=folders["samples_dir"], checkpoints_dir=folders["checkpoints_dir"])
    out = Path(folders["samples_dir"]) / "nb-dcgan"
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    walked = [int(dim) for dim in re.findall(r"z\[(\d+)\]  [\d.]+  \(walked\)", text)]
    assert "coordinates by influence" in text and len(walked) == 2  # the strongest two, printed and walked
    for name in ("latent_interpolation.png", "latent_walks.png", *(f"latent_sweep_z{dim}.png" for dim in walked)):
        assert (out / name).stat().st_size > 0, name
    assert images_shown(notebook) == 3 and gifs_shown(notebook) == 1
    assert len(gif_frames(out / "interpolation.gif")) == 3 * 4
    sizes = sizes_shown(notebook)
    assert all(width <= 1000 for width, _ in sizes)  # the sweeps wrap rather than shrink to the column
    with Image.open(out / "interpolation.gif") as written:  # shown enlarged, the file left at its own size
        assert sizes[-1] == (written.width * 5, written.height * 5) and written.size == (134, 68)


def test_05_variants(folders, tmp_path_factory, tiny_classifier):
    share_classifier(tiny_classifier, folders)
    notebook = run_notebook("05_variants", folders, tmp_path_factory, variants=["r1", "conditional"],
                            image_size=32, epochs=1, limit=640, eval_n=100, run="nb-v", device="cpu", **folders)
    table = markdown_shown(notebook)  # rendered, not printed
    assert "| variant | flags | epochs | time (s) | FID |" in table and "`--conditional`" in table
    assert "`--loss r1`" in table and "conditional (class accuracy" in table
    assert "r1_penalty" in read_history_csv(Path(folders["checkpoints_dir"]) / "nb-v-r1" / "history.csv")[-1]
    for name in ("nb-v-r1", "nb-v-conditional"):
        assert (Path(folders["checkpoints_dir"]) / name / "eval_001.json").is_file()
    assert (Path(folders["samples_dir"]) / "nb-v" / "variants.png").stat().st_size > 0
    assert images_shown(notebook) == 2  # the side-by-side figure, the conditional grid with its class names
    assert all(width <= 1000 for width, _ in sizes_shown(notebook))


def test_06_your_own_gan(folders, tmp_path_factory, tiny_classifier):
    share_classifier(tiny_classifier, folders)
    notebook = run_notebook("06_your_own_gan", folders, tmp_path_factory, epochs=1, more_epochs=1, batch_size=64,
                            limit=640, eval_n=100, run="nb-own", dcgan_run="nb-own-dcgan", device="cpu", **folders)
    checkpoints = Path(folders["checkpoints_dir"])
    saved = json.loads((checkpoints / "nb-own" / "config.json").read_text())
    assert saved["generator"] == "__main__:Generator28" and saved["given"]["loss"] == {"class": "__main__:SmoothedBCE"}
    assert saved["given"]["generator"]["parameters"] > 0 and saved["image_size"] == 28
    assert {"epoch_001.pt", "epoch_002.pt", "last.pt"} <= {p.name for p in (checkpoints / "nb-own").iterdir()}
    assert all("logit_gap" in row for row in read_history_csv(checkpoints / "nb-own" / "history.csv")
               if row["kind"] in ("step", "epoch"))
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "resuming from" in text and "epoch 2/2:" in text and "logit_gap" in text
    own, theirs = (float(re.search(rf"{name} +([\d.]+)", text).group(1))
                   for name in (r"your own GAN \(28x28\)", r"the DCGAN \(32x32\)"))
    assert own == json.loads(next((checkpoints / "nb-own").glob("eval_*.json")).read_text())["fid"].__round__(2)
    assert theirs > 0
    assert images_shown(notebook) >= 3 + 1 + 3 + 2  # grids of both trainings, the curves, the DCGAN's, the samples
