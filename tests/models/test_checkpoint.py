
import copy
import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from dcgan.config import TrainConfig
from dcgan.errors import UserError
from dcgan.files import WriteError
from dcgan.models.checkpoint import (
    FORMAT_VERSION,
    check_architecture,
    load_checkpoint,
    restore_networks,
)
from dcgan.models.dcgan import build_models
from dcgan.models.standing import EMA_STATISTICS, settle_statistics
from dcgan.training.state import save_checkpoint


def minimal_payload(cfg=None):
    cfg = cfg or TrainConfig(image_size=32, channels=1, nz=8, ngf=4, ndf=4)
    generator, discriminator = build_models(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf, cfg.ndf)
    opt = torch.optim.Adam(generator.parameters())
    return {"format_version": FORMAT_VERSION, "config": dataclasses.asdict(cfg), "generator": generator.state_dict(),
            "discriminator": discriminator.state_dict(), "optimizer_g": opt.state_dict(),
            "optimizer_d": opt.state_dict(), "epoch": 3, "step": 30, "fixed_noise": torch.randn(10, cfg.nz),
            "rng": {"data": torch.Generator().get_state()}, "history": [{"kind": "epoch", "loss_D": 0.5}]}


def test_round_trip_restores_everything(tmp_path):
    payload = minimal_payload()
    save_checkpoint(payload, [tmp_path / "a.pt", tmp_path / "b.pt"])
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    loaded = load_checkpoint(tmp_path / "a.pt")
    assert loaded["epoch"] == 3 and loaded["history"] == payload["history"]
    assert torch.equal(loaded["fixed_noise"], payload["fixed_noise"])
    generator, discriminator = restore_networks(loaded, tmp_path / "a.pt")
    for name, tensor in payload["generator"].items():
        assert torch.equal(generator.state_dict()[name], tensor)
    assert list(tmp_path.iterdir()) == [tmp_path / "a.pt", tmp_path / "b.pt"] or len(list(tmp_path.iterdir())) == 2


def test_last_pt_shares_the_epoch_checkpoints_bytes_on_disk_and_stays_whole_when_replaced(tmp_path, monkeypatch):
    first, second = minimal_payload(), {**minimal_payload(), "epoch": 4, "step": 40}
    epoch, last = tmp_path / "epoch_003.pt", tmp_path / "last.pt"
    save_checkpoint(first, [epoch, last])
    assert epoch.stat().st_ino == last.stat().st_ino and last.stat().st_nlink == 2  # one copy on disk
    save_checkpoint(second, [last])  # a mid-epoch save replaces last.pt alone
    assert load_checkpoint(epoch)["epoch"] == 3 and load_checkpoint(last)["epoch"] == 4
    assert epoch.stat().st_nlink == 1 and sorted(path.name for path in tmp_path.iterdir()) == [epoch.name, last.name]
    monkeypatch.setattr("os.link", lambda *args: (_ for _ in ()).throw(OSError(1, "Operation not permitted")))
    save_checkpoint(second, [tmp_path / "epoch_004.pt", last])  # no hard links here: a second copy
    assert last.read_bytes() == (tmp_path / "epoch_004.pt").read_bytes() and last.stat().st_nlink == 1


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(minimal_payload(), [path])
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dcgan.files.os.fsync", disk_full)
    with pytest.raises(WriteError, match="No space left on device.*left intact"):
        save_checkpoint(minimal_payload(), [path])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04 broken zip"])
def test_corrupt_files_give_one_clear_line(tmp_path, content):
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match="is corrupt") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(minimal_payload(), [path])
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(path)


class WritesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": WritesAFile(str(target))}, path)
    with pytest.raises(UserError, match="could run code"):
        load_checkpoint(path)
    assert not target.exists()
    # the same file loaded without protection would have run the code: the test's bait is real
    torch.load(path, weights_only=False)
    assert target.exists()


def test_not_a_dcgan_checkpoint_and_newer_format(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a dcgan checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    newer = minimal_payload()
    newer["format_version"] = FORMAT_VERSION + 1
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(UserError, match="newer than this dcgan"):
        load_checkpoint(tmp_path / "newer.pt")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_architecture_mismatch_names_the_differences(tmp_path):
    saved = TrainConfig(image_size=32, channels=1)
    check_architecture(saved, TrainConfig(image_size=32, channels=0, lr=1e-3), tmp_path / "x.pt")  # fine
    with pytest.raises(UserError, match=r"image_size=32 .* asks for image_size=64"):
        check_architecture(saved, TrainConfig(image_size=64), tmp_path / "x.pt")
    with pytest.raises(UserError, match="ngf=128"):
        check_architecture(saved, TrainConfig(image_size=32, ngf=128), tmp_path / "x.pt")


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path):
    payload = minimal_payload()
    payload["config"]["ngf"] = 8  # the stored weights were made with ngf=4
    with pytest.raises(UserError, match="does not match its own config"):
        restore_networks(payload, tmp_path / "x.pt")


# Written by dcgan before the package was split into folders (commit 841e286): a 32x32 conditional run on the
# synthetic shapes (ngf = ndf = 4, nz 16, --ema 0.9, --flip, --diffaugment translation, --real-label 0.9,
# --seed 3, batch 32, --limit 128) stopped by SIGINT at step 6, two steps into epoch 2. expected.pt holds what that
# code drew from it for `noise` ("drawn") and, for the same noise, after resuming the run to the end of epoch 2 in
# fp32 ("resumed", drawn with G's BatchNorm statistics as that code did; the average now has its own).
BEFORE_FOLDERS = Path(__file__).parent / "fixtures" / "written_before_folders"


def test_a_checkpoint_written_before_the_folders_loads_draws_and_resumes_as_it_did(tmp_path):
    from dcgan.cli import main
    from dcgan.models.runs import load_generator
    from dcgan.pictures.sampling import generate

    expected = torch.load(BEFORE_FOLDERS / "expected.pt", weights_only=True)
    payload = load_checkpoint(BEFORE_FOLDERS / "mid_epoch.pt")
    assert (payload["format_version"], payload["epoch"], payload["step"], payload["epoch_step"]) == (2, 1, 6, 2)
    loaded = load_generator(BEFORE_FOLDERS / "mid_epoch.pt", torch.device("cpu"))
    generator, cfg = loaded.generator, loaded.cfg
    assert cfg.conditional and cfg.ema == 0.9
    as_saved = copy.deepcopy(generator)  # the average as that code saved it: with G's BatchNorm statistics
    as_saved.load_state_dict(payload["generator_ema"])
    torch.testing.assert_close(generate(as_saved, expected["noise"]), expected["drawn"], rtol=1e-4, atol=1e-6)
    settle_statistics(as_saved, cfg.nz, cfg.batch_size)  # loaded to draw, it gets statistics of its own weights
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(), as_saved.state_dict().values()))
    drawn = generate(generator, expected["noise"])
    assert (drawn - expected["drawn"]).abs().max() > 1e-2

    run = tmp_path / "checkpoints" / "old"
    run.mkdir(parents=True)
    shutil.copyfile(BEFORE_FOLDERS / "mid_epoch.pt", run / "last.pt")
    folders = ["--data-dir", str(tmp_path / "data"), "--samples-dir", str(tmp_path / "samples"),
               "--checkpoints-dir", str(tmp_path / "checkpoints")]
    assert main(["train", "--run", "old", "--resume", "--epochs", "2", "--precision", "fp32", "--device", "cpu",
                 "--no-progress", *folders]) == 0
    loaded = load_generator(run / "last.pt", torch.device("cpu"))
    resumed, saved = loaded.generator, loaded.saved
    assert (saved["epoch"], saved["step"], saved["epoch_step"]) == (2, 8, 0)
    assert saved["ema_statistics"] == EMA_STATISTICS  # (that code's "resumed" images had G's statistics)
    assert (generate(resumed, expected["noise"]) - drawn).abs().max() > 100 * 1e-6  # the two steps change what G draws
