"""The repo's promises about itself: README commands, CI script, documented flags, kept folders."""

import dataclasses
import re
import subprocess
from pathlib import Path

from dcgan.config import TrainConfig, flag

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def readme_commands():
    return re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_command_verbatim():
    train_command, test_command = readme_commands()
    assert "-m dcgan train --data fashion-mnist" in train_command
    assert test_command.endswith("-m pytest")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert any("apt-get install" in line and "dataset-fashion-mnist" in line for line in ci_lines)


def test_every_train_option_is_in_the_readme():
    for spec in dataclasses.fields(TrainConfig):
        assert f"`--{flag(spec.name)}" in README, f"--{flag(spec.name)} is not documented in README.md"


def test_artifact_folders_are_kept_but_their_contents_are_ignored():
    for folder in ("data", "checkpoints", "samples"):
        assert (REPO / folder / "README.md").is_file()
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/some_run/file.pt"], cwd=REPO)
        assert ignored.returncode == 0, f"{folder}/ contents are not ignored by git"
    for path in re.findall(r"\]\((docs/[^)]+)\)", README) + re.findall(r'src="(docs/[^"]+)"', README):
        assert (REPO / path).is_file(), f"README links to missing {path}"
