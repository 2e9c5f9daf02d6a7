"""A G, D and loss of a user's own (tests/training/custom_parts.py, outside the package) train with everything the
package does: grids, checkpoints, history, curves, TensorBoard, EMA, DiffAugment, flips; resume bit-exact; sample,
evaluate, nearest and export; the CUDA-graph path modelled on the CPU; names registered at run time."""

import dataclasses
import json

import pytest
import torch

import dcgan
from dcgan import RunReference, UserError, train
from dcgan.models.checkpoint import load_checkpoint
from dcgan.models.runs import load_generator
from dcgan.pictures.sampling import generate, noise_for
from dcgan.registry import DISCRIMINATORS, GENERATORS, LOSSES
from dcgan.training.history import read_history_csv
from tests.helpers import assert_same_training_state, file_names, quiet, tiny_run_flags
from tests.helpers import dcgan as run_cli
from tests.training import custom_parts
from tests.training.custom_parts import HalfBCE, SyncingGenerator, TinyDiscriminator, TinyGenerator, WideGenerator
from tests.training.replay_model import ReplayModel
from tests.training.test_graphs import differences, gpu_plan

G_CLASS = "tests.training.custom_parts:TinyGenerator"


def test_objects_train_with_grids_checkpoints_history_and_their_own_statistics(small_config, tmp_path):
    parts = custom_parts.parts()
    lines = []
    state = train(small_config(epochs=2, ema=0.9, flip=True, diffaugment="translation,color"), log=lines.append,
                  **parts)
    assert state.nets.generator is parts["generator"] and state.nets.discriminator is parts["discriminator"]
    assert state.setup.loss is parts["loss"]
    samples = tmp_path / "samples" / "test"
    assert {"real.png", "epoch_000.png", "epoch_001.png", "epoch_002.png", "progress.gif", "losses.png"} <= \
        set(file_names(samples))
    # the settings name the objects' classes; config.json and the checkpoint record them with their sizes
    count = sum(p.numel() for p in parts["generator"].parameters())
    assert (state.cfg.generator, state.cfg.loss) == (G_CLASS, "tests.training.custom_parts:HalfBCE")
    settings = json.loads((tmp_path / "checkpoints" / "test" / "config.json").read_text())
    assert settings["generator"] == G_CLASS and settings["given"]["generator"] == {"class": G_CLASS,
                                                                                   "parameters": count}
    assert settings["given"]["loss"] == {"class": "tests.training.custom_parts:HalfBCE"}
    assert load_checkpoint(state.paths.last_checkpoint)["given"] == settings["given"]
    assert f"given: generator {G_CLASS} ({count:,} parameters)" in lines[1]
    # the loss's and D's own statistics are in every row, history.csv and the epoch line
    rows = read_history_csv(state.paths.history_csv)
    assert all({"logit_gap", "d_activation"} <= set(row) for row in rows if row["kind"] in ("step", "epoch"))
    assert any(line.startswith("epoch 2/2:") and "logit_gap" in line and "d_activation" in line for line in lines)


def test_a_run_of_objects_is_measured_every_epoch_and_keeps_its_best(small_config, monkeypatch):
    from dcgan.metrics import features
    from tests.metrics.test_metrics import TinyFeatures

    monkeypatch.setattr(features, "feature_model", lambda *args, **kwargs: (TinyFeatures(), "tiny features"))
    state = train(small_config(epochs=2, eval_every=1, eval_n=64, ema=0.9), log=quiet, **custom_parts.parts())
    measured = [row for row in state.history if row["kind"] == "epoch"]
    assert len(measured) == 2 and all(row["fid"] >= 0 and "kid_mean" in row for row in measured)
    assert state.paths.best_checkpoint.is_file() and "logit_gap" in measured[-1]


def test_a_run_of_objects_resumes_bit_exact_with_new_objects_of_the_same_classes(small_config):
    straight = train(small_config(run="straight", epochs=3, ema=0.9), log=quiet, **custom_parts.parts(seed=1))
    train(small_config(run="split", epochs=1, ema=0.9), log=quiet, **custom_parts.parts(seed=1))
    resumed = train(small_config(run="split", epochs=3, resume=True), log=quiet, **custom_parts.parts(seed=7))
    assert resumed.step == straight.step and resumed.cfg.ema == 0.9
    assert_same_training_state(straight, resumed)
    averages = zip(straight.nets.ema_generator.state_dict().values(), resumed.nets.ema_generator.state_dict().values())
    assert all(torch.equal(a, b) for a, b in averages)


@pytest.mark.parametrize("change, told", [
    (dict(generator=None), "was trained with its generator passed as an object (tests.training.custom_parts:"
                           "TinyGenerator): pass generator= an instance of it again"),
    (dict(loss=None), "was trained with its loss passed as an object (tests.training.custom_parts:HalfBCE)"),
    (dict(generator=WideGenerator()), "was trained with the generator tests.training.custom_parts:TinyGenerator; "
                                      "this run passes a tests.training.custom_parts:WideGenerator"),
    (dict(discriminator=TinyDiscriminator(width=4)), "does not fit the discriminator passed: 'features.0.weight' has "
                                                     "shape (8, 3, 4, 4) in the checkpoint, (4, 3, 4, 4) here"),
])
def test_a_resume_with_other_objects_is_one_line_and_writes_nothing(small_config, tmp_path, change, told):
    train(small_config(epochs=1), log=quiet, **custom_parts.parts())
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "checkpoints").rglob("*") if path.is_file()}
    given = {**custom_parts.parts(), **change}
    with pytest.raises(UserError, match=told.replace("(", r"\(").replace(")", r"\)")) as refused:
        train(small_config(epochs=2, resume=True), log=quiet, **{k: v for k, v in given.items() if v is not None})
    assert "\n" not in str(refused.value)
    after = {path: path.stat().st_mtime_ns for path in (tmp_path / "checkpoints").rglob("*") if path.is_file()}
    assert after == before


def test_objects_for_a_run_of_registered_parts_and_objects_that_do_not_fit_are_refused(small_config):
    train(small_config(epochs=1), log=quiet)
    with pytest.raises(UserError, match="with the registered generator 'dcgan', not an object: drop generator="):
        train(small_config(epochs=2, resume=True), log=quiet, generator=TinyGenerator())
    with pytest.raises(UserError, match=r"generator= turns noise of shape \(2, 16\) into \(2, 3, 16, 16\); this run "
                                        r"needs images of shape \(2, 3, 32, 32\)"):
        train(small_config(run="small", epochs=1), log=quiet, generator=TinyGenerator(size=16))
    with pytest.raises(UserError, match=r"discriminator= fails on images of shape \(2, 3, 32, 32\).*: RuntimeError"):
        train(small_config(run="narrow", epochs=1), log=quiet, discriminator=TinyDiscriminator(size=64))
    with pytest.raises(UserError, match=r"loss= takes an instance of a subclass of dcgan.Loss, not type \(call the "
                                        r"class: loss=MyLoss\(\)\)"):
        train(small_config(run="class", epochs=1), log=quiet, loss=HalfBCE)


def test_sample_evaluate_nearest_and_export_load_into_the_object(small_config, tmp_path, monkeypatch):
    from dcgan.metrics import features
    from tests.metrics.test_metrics import TinyFeatures

    state = train(small_config(epochs=1), log=quiet, **custom_parts.parts())
    folders = dict(checkpoints_dir=str(tmp_path / "checkpoints"), samples_dir=str(tmp_path / "samples"),
                   data_dir=str(tmp_path / "data"), device="cpu")
    with pytest.raises(UserError, match="it loads from Python only, into an instance of that class given as "
                                        "generator="):
        dcgan.sample(RunReference(run="test", **folders))
    mine = TinyGenerator()
    path = dcgan.sample(RunReference(run="test", generator=mine, **folders), n=8)
    assert path.is_file()
    noise = noise_for(8, 16, 0)
    assert torch.equal(generate(mine, noise), generate(state.nets.generator, noise))  # the trained weights

    monkeypatch.setattr(features, "feature_model", lambda *args, **kwargs: (TinyFeatures(), "tiny features"))
    result = dcgan.evaluate(RunReference(run="test", generator=TinyGenerator(), **folders), n=64, progress=False,
                            log=quiet, faces="none")
    assert result["features"] == "tiny features" and result["fid"] >= 0
    report = dcgan.nearest(RunReference(run="test", generator=TinyGenerator(), **folders), n=16, progress=False,
                           log=quiet)
    assert report["n_generated"] == 16

    lines = []
    out = dcgan.export(RunReference(run="test", generator=TinyGenerator(), **folders), tmp_path / "export",
                       say=lines.append)
    exported = json.loads((out / "config.json").read_text())
    assert exported["generator"] == G_CLASS and exported["parameters"] == sum(p.numel() for p in mine.parameters())
    assert "Load the weights into an instance of it" in (out / "README.md").read_text()
    assert not [line for line in lines if line.startswith("note:")]  # an importable class: nothing to warn of
    with pytest.raises(UserError, match="holds a G passed to train\\(\\) as an object .*: pass generator= an instance"):
        load_generator(out)
    with pytest.raises(UserError, match="holds a tests.training.custom_parts:TinyGenerator, not a .*WideGenerator"):
        load_generator(out, generator=WideGenerator())
    loaded = load_generator(out, generator=TinyGenerator())
    assert torch.equal(generate(loaded.generator, noise), generate(state.nets.generator, noise))


def test_an_export_of_a_class_defined_in_a_notebook_says_it_cannot_be_imported_again(small_config, tmp_path):
    namespace = {"__name__": "__main__", "TinyGenerator": TinyGenerator}
    exec("class NotebookGenerator(TinyGenerator):\n    pass\n", namespace)  # as a notebook cell defines it
    generator_class = namespace["NotebookGenerator"]
    train(small_config(epochs=1), log=quiet, generator=generator_class())
    lines = []
    out = dcgan.export(RunReference(run="test", checkpoints_dir=str(tmp_path / "checkpoints"), device="cpu",
                                    generator=generator_class()), tmp_path / "export", say=lines.append)
    assert [line for line in lines if line.startswith("note:")] == [
        "note: G's class __main__:NotebookGenerator was defined in a notebook or a script: it cannot be imported "
        "again, so keep its code beside the export (its model card says so)"]
    assert "was defined in a notebook or a script (`__main__`) and cannot be imported again" in \
        (out / "README.md").read_text().replace("\n", " ")


def test_names_registered_at_run_time_train_and_are_checked_when_used(small_config, tmp_path):
    dcgan.register_loss("half-bce", HalfBCE)
    dcgan.register_generator("tiny", lambda cfg: TinyGenerator(cfg.nz, cfg.image_size, cfg.channels))
    dcgan.register_discriminator("tiny", lambda cfg: TinyDiscriminator(cfg.image_size, cfg.channels))
    try:
        assert "half-bce" in LOSSES.names and "tiny" in dcgan.config.families()
        state = train(small_config(epochs=1, loss="half-bce", arch="tiny"), log=quiet)
        assert isinstance(state.nets.generator, TinyGenerator) and isinstance(state.setup.loss, HalfBCE)
        assert "logit_gap" in state.history[-1]
        with pytest.raises(UserError, match="'bce' is a built-in loss: register yours under another name"):
            dcgan.register_loss("bce", HalfBCE())
        with pytest.raises(UserError, match="cannot register 'My Loss'"):
            dcgan.register_loss("My Loss", HalfBCE())
    finally:
        for registry, name in ((LOSSES, "half-bce"), (GENERATORS, "tiny"), (DISCRIMINATORS, "tiny")):
            registry.places.pop(name, None)
    # in a process that has not registered them, the names are refused where they are used, in one line
    flags = [*tiny_run_flags(tmp_path, "test"), "--epochs", "2", "--resume"]
    result = run_cli("train", *flags)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "config.arch 'tiny' is not registered in this process" in result.stderr
    result = run_cli("train", *tiny_run_flags(tmp_path, "other"), "--loss", "half-bce")
    assert result.returncode == 2 and "unknown --loss 'half-bce': use bce, lsgan, hinge, wgan-gp" in result.stderr
    assert not (tmp_path / "checkpoints" / "other").exists()  # refused before anything was written


def test_the_replay_model_replays_a_step_of_objects_as_the_eager_step_runs_it(small_config, monkeypatch):
    options = dict(n_critic=2, ema=0.9, diffaugment="translation,cutout,color", flip=True, epochs=4,
                   precision="fp32")
    model = ReplayModel()
    gpu_plan(monkeypatch, model)  # (both runs with the GPU's fused Adam)
    eager = train(small_config(run="eager", cuda_graphs="off", **options), log=quiet, **custom_parts.parts())
    graphed = train(small_config(run="graphed", **options), log=quiet, **custom_parts.parts())
    assert graphed.runner.graphed.replayed > 0 and len(model.tapes) == 2  # a D step and a D + G step
    assert differences(eager, graphed) == []


def test_a_network_that_cannot_be_captured_falls_back_to_eager_in_one_line(small_config, monkeypatch):
    parts = {**custom_parts.parts(), "generator": SyncingGenerator()}
    gpu_plan(monkeypatch, ReplayModel())
    eager = train(small_config(run="eager", cuda_graphs="off", precision="fp32"), log=quiet,
                  **{name: _copy(part) for name, part in parts.items()})
    lines = []
    fallen_back = train(small_config(run="graphed", precision="fp32"), log=lines.append, **parts)
    off = [line for line in lines if line.startswith("CUDA graphs off")]
    assert len(off) == 1 and "capturing the step failed (HostSync: aten._local_scalar_dense" in off[0]
    assert fallen_back.runner.graphed.off and differences(eager, fallen_back) == ["nothing replayed"]


def _copy(network):
    import copy

    return copy.deepcopy(network)


def test_one_cpu_epoch_runs_functions_of_at_most_sixteen_files(small_config):
    """Every function called between on_train_start and on_train_end of one epoch (sys.setprofile), by file."""
    import sys
    from pathlib import Path

    package = str(Path(dcgan.__file__).parent)
    files = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(package):
            files.add(Path(frame.f_code.co_filename).relative_to(package).as_posix())

    class Watch:
        def on_train_start(self, state):
            sys.setprofile(profile)

        def on_train_end(self, state):
            sys.setprofile(None)

    try:
        train(small_config(epochs=1), callbacks=[Watch()], log=quiet)
    finally:
        sys.setprofile(None)
    assert len(files) <= 16, sorted(files)
    assert {"training/loop.py", "training/step.py", "models/losses.py", "models/dcgan.py"} <= files


def test_training_never_imports_what_only_other_commands_need():
    import subprocess
    import sys

    code = "import sys, dcgan.training.loop; print(' '.join(sorted(m for m in sys.modules if m.startswith('dcgan'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    for module in ("data.prepare", "data.faces", "metrics.face_rate", "metrics.evaluate", "metrics.nearest",
                   "models.export", "models.runs", "pictures.model_card", "pictures.commands", "cli"):
        assert f"dcgan.{module}" not in loaded, module


def test_torchrun_trains_objects_on_every_rank(tmp_path):
    from tests.training.test_distributed import WORKER, settings, torchrun

    reports = tmp_path / "reports"
    reports.mkdir()
    result = torchrun(WORKER, json.dumps({**settings(tmp_path, "objects"), "objects": True}), reports)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(reports / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["generator_class"] == rank1["generator_class"] == "custom_parts:TinyGenerator"
    for net in ("generator", "discriminator"):
        for name, tensor in rank0[net].items():
            assert torch.equal(tensor, rank1[net][name]), f"{net}.{name} differs between the ranks"
    history = read_history_csv(tmp_path / "checkpoints" / "objects" / "history.csv")
    assert all("logit_gap" in row for row in history if row["kind"] == "step")


test_torchrun_trains_objects_on_every_rank = pytest.mark.slow(test_torchrun_trains_objects_on_every_rank)


def test_a_config_naming_an_object_validates_and_a_plain_word_does_not(small_config):
    assert small_config(generator="my_module:MyGenerator").validate().generator == "my_module:MyGenerator"
    with pytest.raises(UserError, match="--generator 'my module' is not a name"):
        dataclasses.replace(small_config(), generator="my module").validate()


def test_the_command_line_tells_in_one_line_that_a_run_of_objects_loads_from_python(small_config, tmp_path):
    train(small_config(epochs=1), log=quiet, **custom_parts.parts())
    folders = ["--checkpoints-dir", tmp_path / "checkpoints", "--samples-dir", tmp_path / "samples"]
    resumed = run_cli("train", "--run", "test", "--resume", "--epochs", "2", *folders, "--data-dir", tmp_path / "data")
    sampled = run_cli("sample", "--run", "test", *folders)
    assert resumed.returncode == sampled.returncode == 2
    assert resumed.stderr.count("\n") == sampled.stderr.count("\n") == 1
    assert f"was trained with its generator passed as an object ({G_CLASS}): pass generator= an instance of it " \
           "again to resume (from Python: train(cfg, generator=...))" in resumed.stderr
    assert "it loads from Python only, into an instance of that class given as generator=" in sampled.stderr
