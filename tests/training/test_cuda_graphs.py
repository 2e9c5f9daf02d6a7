"""Whole-step CUDA graphs captured and replayed for real, against eager steps, for every variant a step carries.
Marked `cuda`: skipped where there is no GPU (CI), run with `pytest -m cuda` on a GPU machine and by
benchmarks/gpu_check.py. They need torch and the package only (no papermill, Jupyter or torch-fidelity).

Each run is checked three ways: the graphs' own self-check (the first replay of each kind, and one 100 replays
later, against the eager step from the same state) must report a match; the step-by-step losses must stay
within a tolerance of an eager run's from the same seed (cuDNN's sums may differ in order, so not bit for bit);
and the graphs must have been replayed, with no fallback line.
"""

import numpy as np
import pytest
import torch

from dcgan import train
from dcgan.training import execution
from tests.helpers import quiet
from tests.training import custom_parts
from tests.training.test_graphs import loss_read_on_the_host

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (pytest -m cuda there)")]

# every piece of a step a graph must carry: two kinds of step, EMA, DiffAugment, labels, flips, smoothing
EVERYTHING = dict(n_critic=2, ema=0.9, diffaugment="translation,cutout,color", conditional=True, flip=True,
                  real_label=0.9)
LOSS_TOLERANCE = {"fp32": 0.01, "bf16": 0.1}  # largest step-loss difference from eager over the run's steps


def runs(small_config, parts=dict, **options):
    """An eager run and a graphed one from the same seed on the GPU, losses logged every step; `parts()` gives each
    run its G, D or loss objects (none: the settings name them)."""
    common = {"device": "cuda", "log_every": 1, "epochs": 4, **options}
    eager = train(small_config(run="eager", cuda_graphs="off", **common), log=quiet, **parts())
    lines = []
    graphed = train(small_config(run="graphed", cuda_graphs="on", **common), log=lines.append, **parts())
    return eager, graphed, lines


def step_losses(state) -> np.ndarray:
    return np.array([[row["loss_D"], row["loss_G"]] for row in state.history if row["kind"] == "step"])


def assert_replayed_like_eager(eager, graphed, lines, checks_per_kind=1):
    assert not [line for line in lines if line.startswith("CUDA graphs off") or "torch.compile failed" in line]
    kinds = 2 if graphed.cfg.n_critic > 1 else 1
    matches = [line for line in lines if line.startswith("CUDA graphs: replay matches the eager step")]
    assert len(matches) == kinds * checks_per_kind, lines
    steps = graphed.runner.graphed.replayed + execution.WARMUP_G_STEPS * kinds  # this run's (a resumed one's: since)
    assert graphed.runner.graphed.replayed > 0 and graphed.step == eager.step
    rows = [row for row in graphed.history if row["kind"] == "graph_check" and row["step"] > graphed.step - steps]
    assert [row["check"] for row in rows] == ["match"] * len(matches)
    tolerance = LOSS_TOLERANCE["bf16" if graphed.setup.plan.bf16 else "fp32"]
    gap = np.abs(step_losses(eager) - step_losses(graphed)).max()
    assert gap <= tolerance, f"losses differ from eager by {gap:.3g} (allowed {tolerance})"


@pytest.mark.parametrize("options", [dict(EVERYTHING, precision="fp32"), dict(EVERYTHING, precision="bf16"),
                                     dict(loss="wgan-gp", n_critic=2, precision="fp32"),
                                     dict(arch="resnet", precision="fp32")],
                         ids=["n-critic 2, EMA, DiffAugment, conditional (fp32)",
                              "n-critic 2, EMA, DiffAugment, conditional (bf16)", "wgan-gp", "resnet (dropout)"])
def test_graphed_steps_train_like_eager_steps(small_config, options):
    eager, graphed, lines = runs(small_config, **options)
    assert_replayed_like_eager(eager, graphed, lines)
    assert all(group["capturable"] and group["fused"] for group in graphed.nets.opt_d.param_groups)


def test_the_self_check_runs_again_100_replays_later(small_config):
    eager, graphed, lines = runs(small_config, batch_size=8, limit=128, epochs=7)  # 112 steps
    assert_replayed_like_eager(eager, graphed, lines, checks_per_kind=2)


def test_compiled_networks_inside_graphs(small_config):
    eager, graphed, lines = runs(small_config, compile=True, precision="fp32")
    assert graphed.setup.plan.compile and not graphed.setup.plan.channels_last
    assert_replayed_like_eager(eager, graphed, lines)


def test_a_checkpoint_written_on_the_cpu_resumes_graphed_on_the_gpu(small_config, tmp_path):
    train(small_config(run="laptop", device="cpu", epochs=1, precision="fp32"), log=quiet)
    laptop = str(tmp_path / "checkpoints" / "laptop" / "last.pt")
    eager, graphed, lines = runs(small_config, resume=True, checkpoint=laptop, precision="fp32")
    for optimizer in (graphed.nets.opt_g, graphed.nets.opt_d):
        assert all(group["capturable"] and group["fused"] for group in optimizer.param_groups)
        assert {state["step"].device.type for state in optimizer.state.values()} == {"cuda"}
    assert_replayed_like_eager(eager, graphed, lines)


def test_a_channels_last_checkpoint_resumes_compiled_with_moments_laid_out_like_the_weights(small_config, tmp_path):
    train(small_config(run="first", device="cuda", epochs=1, channels_last="on", precision="fp32"), log=quiet)
    first = str(tmp_path / "checkpoints" / "first" / "last.pt")
    eager, graphed, lines = runs(small_config, resume=True, checkpoint=first, compile=True, precision="fp32")
    assert not graphed.setup.plan.channels_last
    for optimizer in (graphed.nets.opt_g, graphed.nets.opt_d):
        for parameter, state in optimizer.state.items():
            assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == parameter.stride()
    assert_replayed_like_eager(eager, graphed, lines)


def test_a_capture_that_fails_leaves_the_generators_and_the_allocator_usable_and_the_run_trains_eagerly(
        small_config, monkeypatch):
    """A host sync injected into the captured body: the capture fails, the noise generator and the default CUDA
    generator (which the resnet D's dropout draws from) are revived, the allocator capturing no more, and the eager
    steps train what an eager run trains; a second run in the same process captures and replays."""
    with monkeypatch.context() as patch:
        patch.setattr(execution, "train_step", loss_read_on_the_host(execution.train_step))
        eager, fallen_back, lines = runs(small_config, arch="resnet", precision="fp32")
    off = [line for line in lines if line.startswith("CUDA graphs off")]
    assert off == [off[0]] and off[0].startswith("CUDA graphs off: capturing the step failed (")
    assert off[0].endswith("training goes on eagerly"), off[0]  # its memory given back: no restart needed
    assert "previous error during capture" not in off[0]  # the operation that broke it is named
    assert fallen_back.runner.graphed.off and fallen_back.runner.graphed.replayed == 0
    torch.randn(4, device="cuda")  # the default CUDA generator draws again
    torch.randn(4, device="cuda", generator=fallen_back.progress.noise_rng)
    torch.cuda.empty_cache()  # the allocator is not left capturing
    gap = np.abs(step_losses(eager) - step_losses(fallen_back)).max()
    assert gap <= LOSS_TOLERANCE["fp32"], f"losses differ from eager by {gap:.3g}"
    eager, graphed, lines = runs(small_config, precision="fp32", overwrite=True)  # as a notebook's next cell would
    assert_replayed_like_eager(eager, graphed, lines)


def test_a_g_d_and_loss_of_your_own_graphed_like_eager(small_config):
    """Objects defined outside the package (tests/training/custom_parts.py; D and the loss report statistics of
    their own), with EMA, DiffAugment and two kinds of step."""
    options = dict(n_critic=2, ema=0.9, diffaugment="translation,cutout,color", flip=True, precision="fp32")
    eager, graphed, lines = runs(small_config, parts=custom_parts.parts, **options)
    assert_replayed_like_eager(eager, graphed, lines)
    assert all("logit_gap" in row and "d_activation" in row for row in graphed.history if row["kind"] == "step")


def test_a_network_of_your_own_that_cannot_be_captured_falls_back_in_one_line(small_config):
    def parts():
        return {**custom_parts.parts(), "generator": custom_parts.SyncingGenerator()}

    eager, fallen_back, lines = runs(small_config, parts=parts, precision="fp32")
    off = [line for line in lines if line.startswith("CUDA graphs off")]
    assert len(off) == 1 and "capturing the step failed (" in off[0]
    assert fallen_back.runner.graphed.off and fallen_back.runner.graphed.replayed == 0
    gap = np.abs(step_losses(eager) - step_losses(fallen_back)).max()
    assert gap <= LOSS_TOLERANCE["fp32"], f"losses differ from eager by {gap:.3g}"


def test_the_graphed_average_draws_with_statistics_of_its_own_weights(small_config):
    """The graph moves the average's weights and leaves its BatchNorm statistics alone; every checkpoint holds the
    statistics its weights produce, recomputed on the GPU, as in an eager run."""
    from tests.training.test_ema_statistics import own_statistics, statistics_of

    eager, graphed, lines = runs(small_config, ema=0.9, ema_rampup=0.5, precision="fp32")
    assert_replayed_like_eager(eager, graphed, lines)
    average = graphed.sampler
    for (mean, var), (own_mean, own_var) in zip(statistics_of(average), own_statistics(average, graphed.cfg)):
        torch.testing.assert_close(mean, own_mean)
        torch.testing.assert_close(var, own_var)
    for (mean, var), (eager_mean, eager_var) in zip(statistics_of(average), statistics_of(eager.sampler)):
        torch.testing.assert_close(mean, eager_mean, rtol=0.05, atol=0.05)
        torch.testing.assert_close(var, eager_var, rtol=0.05, atol=0.05)
