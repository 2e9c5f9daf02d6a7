"""The repo's promises about itself: README commands, CI script, documented flags, kept folders, docs links."""

import dataclasses
import re
import subprocess

from dcgan.config import TrainConfig, flag
from tests.helpers import REPO

README = (REPO / "README.md").read_text()
OPTIONS = (REPO / "docs" / "options.md").read_text()  # the option reference the README links to


def readme_commands():
    return re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_command_verbatim():
    train_command, test_command = readme_commands()
    assert "-m dcgan train --data fashion-mnist" in train_command
    assert "--preset recommended" in train_command  # the recipe of docs/variants.md's CPU study
    assert test_command.endswith("-m pytest")
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert any("apt-get install" in line and "dataset-fashion-mnist" in line for line in ci_lines)


def test_every_train_option_is_in_the_option_reference():
    assert "(docs/options.md)" in README
    for spec in dataclasses.fields(TrainConfig):
        assert f"`--{flag(spec.name)}" in OPTIONS, f"--{flag(spec.name)} is not documented in docs/options.md"


def test_artifact_folders_are_kept_but_their_contents_are_ignored():
    for folder in ("data", "checkpoints", "samples"):
        assert (REPO / folder / "README.md").is_file()
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{folder}/some_run/file.pt"], cwd=REPO)
        assert ignored.returncode == 0, f"{folder}/ contents are not ignored by git"
    for path in re.findall(r"\]\((docs/[^)]+)\)", README) + re.findall(r'src="(docs/[^"]+)"', README):
        assert (REPO / path.partition("#")[0]).is_file(), f"README links to missing {path}"


def test_every_module_and_import_the_docs_name_exists():
    """`dcgan.pictures.latent` (`lerp`, ...) and `from dcgan... import ...` in README.md and docs/ still work."""
    import importlib

    texts = [README] + [path.read_text() for path in sorted((REPO / "docs").glob("*.md"))]
    named = [match for text in texts for match in re.findall(r"`(dcgan(?:\.\w+)+)`(?: \(([^)]*)\))?", text)]
    statements = [line.strip("` ") for text in texts for line in re.findall(r"`?from dcgan[\w.]* import [^`\n]+", text)]
    assert len(named) >= 5 and len(statements) >= 2
    for dotted, names in named:  # a module (`dcgan.pictures.latent`) or a name in one (`dcgan.UserError`)
        module, _, last = dotted.rpartition(".")
        try:
            found = importlib.import_module(dotted)
        except ModuleNotFoundError:
            found = getattr(importlib.import_module(module), last)
        for name in re.findall(r"`(\w+)`", names):
            assert hasattr(found, name), f"{dotted} has no {name}"
    for statement in statements:
        exec(statement.split("#")[0], {})


def anchors(markdown):
    """The anchors GitHub gives the headings of a Markdown text (outside code blocks)."""
    found, fence = set(), False
    for line in markdown.splitlines():
        fence ^= line.startswith("```")
        if not fence and re.match(r"#{1,6} ", line):
            found.add(re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
    return found


def links(markdown):
    """Every link target of a Markdown text outside code blocks: [text](target) and <img src="target">."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", prose) + re.findall(r'src="([^"]+)"', prose)


def test_every_link_of_the_readme_and_the_docs_resolves_and_every_docs_page_is_linked():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in links(page.read_text()):
            if re.match(r"\w+://|mailto:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.relative_to(REPO)} links to missing {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked.read_text()), f"{page.relative_to(REPO)}: {path} has no #{anchor}"
    readme_links = {target.partition("#")[0] for target in links(README)}
    for page in pages[1:]:
        assert f"docs/{page.name}" in readme_links, f"README.md does not link docs/{page.name}"
