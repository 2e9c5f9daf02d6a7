from dcgan.paths import default_run_name, repo_root, run_paths
from tests.helpers import REPO


def test_default_roots_are_the_repo_folders_from_the_root_and_from_notebooks(monkeypatch):
    for start in (REPO, REPO / "notebooks"):
        monkeypatch.chdir(start)
        paths = run_paths("fm32")
        assert paths.samples == REPO / "samples" / "fm32"
        assert paths.checkpoints == REPO / "checkpoints" / "fm32"
        assert paths.sample_grid(3) == REPO / "samples" / "fm32" / "epoch_003.png"
        assert paths.epoch_checkpoint(12) == REPO / "checkpoints" / "fm32" / "epoch_012.pt"


def test_outside_the_repo_the_installed_checkout_is_used(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert repo_root() == REPO


def test_configured_roots_win(tmp_path):
    paths = run_paths("r", str(tmp_path / "s"), str(tmp_path / "c"))
    assert paths.samples == tmp_path / "s" / "r" and paths.last_checkpoint == tmp_path / "c" / "r" / "last.pt"


def test_default_run_names():
    assert default_run_name("fashion-mnist", 32) == "fashion-mnist-32"
    assert default_run_name("/data/anime faces/", 64) == "anime-faces-64"
