"""Odd machines end in one line: a folder dataset over 1,100 levels deep, and no writable temporary folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dcgan.data.sources import list_image_files
from tests.helpers import dcgan

DEPTH = 1100
TINY_TRAIN = ["--image-size", "32", "--epochs", "1", "--limit", "64", "--ngf", "8", "--ndf", "8", "--nz", "16",
              "--run", "t", "--device", "cpu"]


def deep_tree(root: Path, depth: int, name: str) -> Path:
    """`root` holding `depth` nested folders called `name` with two PNGs at the bottom (built one level at a time
    through folder descriptors: the full path may exceed what the system opens); returns root."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        for index in range(2):
            image = Image.new("RGB", (40, 40), (index * 120, 60, 30))
            with os.fdopen(os.open(f"img{index}.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as out:
                image.save(out, format="PNG")
    finally:
        os.close(fd)
    return root


def remove_deep_tree(root: Path, name: str) -> None:
    """Delete a tree made by deep_tree level by level (shutil.rmtree recurses once per level and would fail)."""
    fds = [os.open(root, os.O_RDONLY)]
    while name in os.listdir(fds[-1]):
        fds.append(os.open(name, os.O_RDONLY, dir_fd=fds[-1]))
    for entry in os.listdir(fds[-1]):
        os.unlink(entry, dir_fd=fds[-1])
    os.close(fds.pop())
    while fds:
        os.rmdir(name, dir_fd=fds[-1])
        os.close(fds.pop())
    root.rmdir()


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The stderr of a run that failed with a UserError: exactly one line and no traceback."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def deep_folder(tmp_path_factory):
    """Images 1,100 levels down, with a path short enough to open (2 bytes a level)."""
    root = deep_tree(tmp_path_factory.mktemp("deep") / "pictures", DEPTH, "d")
    yield root
    remove_deep_tree(root, "d")


@pytest.fixture(scope="module")
def too_deep_folder(tmp_path_factory):
    """Images 1,100 levels down whose path (5 bytes a level) exceeds the system's 4,096-byte limit."""
    root = deep_tree(tmp_path_factory.mktemp("deeper") / "pictures", DEPTH, "dddd")
    yield root
    remove_deep_tree(root, "dddd")


def test_deep_folder_listed_at_any_depth(deep_folder):
    files = list_image_files(deep_folder)
    assert [path.name for path in files] == ["img0.png", "img1.png"]
    assert len(files[0].relative_to(deep_folder).parts) == DEPTH + 1


def test_symlinked_and_hidden_folders_still_not_entered(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / ".hidden").mkdir()
    for folder in ("a", ".hidden"):
        Image.new("L", (8, 8)).save(tmp_path / "data" / folder / "x.png")
    (tmp_path / "data" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    (tmp_path / "data" / "dangling.png").symlink_to(tmp_path / "missing.png")
    names = [path.relative_to(tmp_path / "data").as_posix() for path in list_image_files(tmp_path / "data")]
    assert names == ["a/x.png", "dangling.png"]


def test_train_reads_images_1100_levels_deep(deep_folder, tmp_path):
    result = dcgan("train", "--data", deep_folder, "--batch-size", "2", *TINY_TRAIN, "--data-dir", tmp_path / "D",
                   "--samples-dir", tmp_path / "S", "--checkpoints-dir", tmp_path / "C")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 images at 32x32" in result.stdout
    assert (tmp_path / "C" / "t").is_dir()


def test_prepare_reads_and_writes_images_1100_levels_deep(deep_folder, tmp_path):
    result = dcgan("prepare", deep_folder, tmp_path / "out", "--size", "16", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    written = list_image_files(tmp_path / "out")
    assert [path.name for path in written] == ["img0-png_0.png", "img1-png_0.png"]
    assert len(written[0].relative_to(tmp_path / "out").parts) == DEPTH + 1
    remove_deep_tree(tmp_path / "out", "d")


@pytest.mark.parametrize("command", ["train", "prepare"])
def test_paths_over_the_system_limit_end_in_one_line(command, too_deep_folder, tmp_path):
    if command == "train":
        result = dcgan("train", "--data", too_deep_folder, "--batch-size", "2", *TINY_TRAIN, "--data-dir",
                       tmp_path / "D", "--samples-dir", tmp_path / "S", "--checkpoints-dir", tmp_path / "C")
    else:
        result = dcgan("prepare", too_deep_folder, tmp_path / "out", "--size", "16", "--no-progress")
    line = one_line_error(result)
    assert str(too_deep_folder) in line and "4,096 bytes" in line and "shallower folder" in line


def test_prepare_refuses_a_dst_whose_copies_would_be_too_deep(deep_folder, tmp_path):
    dst = tmp_path.joinpath(*["x" * 200] * 10)
    line = one_line_error(dcgan("prepare", deep_folder, dst, "--size", "16", "--no-progress"))
    assert "path limit of 4,096 bytes" in line and "shorter path" in line
    assert not dst.exists()


def without_temporary_folder(tmp_path: Path) -> dict:
    """An environment in which tempfile finds no usable folder: TMPDIR lies under a regular file (which even root
    cannot create), and a sitecustomize makes it tempfile's only candidate, as where /tmp, /var/tmp, /usr/tmp and
    the working directory are read-only."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nimport tempfile\n\n"
                                           "tempfile._candidate_tempdir_list = lambda: [os.environ['TMPDIR']]\n")
    return {**os.environ, "TMPDIR": str(blocker / "tmp"), "HOME": str(blocker / "home"),
            "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_no_writable_temporary_folder_ends_in_one_line(tmp_path):
    env = without_temporary_folder(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import tempfile; tempfile.gettempdir()"], env=env,
                           capture_output=True, text=True)
    assert "No usable temporary directory" in probe.stderr  # the environment really has none
    command = [sys.executable, "-m", "dcgan", "train", "--data", "synthetic", "--batch-size", "32", *TINY_TRAIN,
               "--data-dir", "D", "--samples-dir", "S", "--checkpoints-dir", "C"]
    line = one_line_error(subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True))
    assert line.startswith("error: no writable temporary folder")
    assert f"TMPDIR={env['TMPDIR']}" in line and "set TMPDIR to a writable folder" in line
    debug = subprocess.run([*command, "--debug"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert "Traceback" in debug.stderr and "No usable temporary directory" in debug.stderr
    # under torchrun every process meets it: the first says it, the others end quietly with the same code
    for rank, told in (("0", 1), ("1", 0), ("3", 0)):
        ranked = {**env, "RANK": rank, "WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
        result = subprocess.run(command, env=ranked, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("no writable temporary folder") == told
        assert len(result.stderr.splitlines()) == told


LONG = "n" * 300  # a name no file system takes (255 bytes at most)
DEEP = "/d" * 2100  # a path beyond the system's 4,096 bytes, each name short


@pytest.mark.parametrize("where", ["name", "path"])
@pytest.mark.parametrize("command, flag", [
    ("train", "--data"), ("train", "--data-dir"), ("train", "--samples-dir"), ("train", "--checkpoints-dir"),
    ("train", "--checkpoint"), ("train", "--logdir"), ("sample", "--out"), ("sample", "--checkpoint"),
    ("export", "--out"), ("evaluate", "--inception-weights"), ("nearest", "--samples-dir"), ("prepare", "SRC"),
    ("prepare", "DST")])
def test_a_path_too_long_for_the_system_is_one_line_naming_it(tmp_path, command, flag, where):
    too_long = str(tmp_path / LONG) if where == "name" else DEEP
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (40, 40)).save(pictures / "a.png")
    if command == "prepare":
        args = [too_long, tmp_path / "dst"] if flag == "SRC" else [pictures, too_long]
    else:
        args = [flag, too_long, "--run", "r", "--checkpoints-dir", tmp_path / "c"] * (flag != "--checkpoints-dir") \
            or [flag, too_long, "--run", "r"]
        args += ["--data", "synthetic", "--tensorboard"] * (command == "train" and flag != "--data")
        args += ["--resume"] * (command == "train" and flag == "--checkpoint")
    result = dcgan(command, *args, cwd=tmp_path)
    line = one_line_error(result)
    why = "holds a name of 300 bytes" if where == "name" else "is 4,200 bytes long, beyond the system's path limit"
    assert line.startswith(f"error: {flag} ") and why in line, line
    assert result.returncode == 2
