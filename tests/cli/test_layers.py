"""The package's architecture stays what the Layout of the README and docs/layout.md shows: folders by concern, each
importing only the folders below it, no import cycle, nothing importing the command line.

Every import statement counts, also those inside functions or under `if TYPE_CHECKING:`.
"""

import ast
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "src" / "dcgan"
# the top-level modules every folder may use
SHARED = {"config", "presets", "registry", "checks", "errors", "files", "lock", "paths", "device", "progress"}
# What each group may import besides itself, bottom to top; "entry" is the package, `python -m dcgan` and the CLI.
MAY_IMPORT = {
    "shared": set(),
    "data": {"shared"},
    "models": {"shared"},
    "pictures": {"shared", "data", "models"},
    "metrics": {"shared", "data", "models", "pictures"},
    "training": {"shared", "data", "models", "pictures", "metrics"},
    "entry": {"shared", "data", "models", "pictures", "metrics", "training"},
}
FOLDERS = set(MAY_IMPORT) - {"shared", "entry"}
MAX_TOP_MODULES = 13


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module names inside the package ("" is the package itself, "data" a folder) -> their files."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that the module `name` imports, wherever the import statement stands."""
    here = name.split(".") if name else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module and node.module.split(".")[0] == "dcgan":
                target = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:  # `from .data import cache` imports the module data.cache
                submodule = f"{target}.{alias.name}".strip(".")
                found.add(submodule if submodule in known else target)
        elif isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[2] for alias in node.names if alias.name.split(".")[0] == "dcgan"}
    return found - {name}


def group(name: str) -> str:
    first = name.split(".")[0]
    if first in FOLDERS:
        return first
    return "shared" if name in SHARED else "entry"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search (none in a layered package)."""
    found, done, stack = [], set(), []

    def visit(name: str) -> None:
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if target in stack:
                found.append(stack[stack.index(target):] + [target])
            elif target not in done:
                visit(target)
        stack.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def violations(root: Path) -> list[str]:
    """Every import against the layering, and every import cycle, as one line each."""
    graph = import_graph(root)
    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target not in graph:
                problems.append(f"{name or 'dcgan'} imports {target}, which is not a module of the package")
            elif target == "cli" and name != "__main__":
                problems.append(f"{name} imports the CLI")
            elif group(target) != group(name) and group(target) not in MAY_IMPORT[group(name)]:
                problems.append(f"{name} imports {target}: {group(name)} may not import {group(target)}")
    return problems + [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest chain of imports (the import depth); the graph must be acyclic."""
    memo: dict[str, list[str]] = {}

    def chain(name: str) -> list[str]:
        if name not in memo:
            memo[name] = [name] + max((chain(target) for target in graph[name]), key=len, default=[])
        return memo[name]

    return max((chain(name) for name in graph), key=len)


def test_the_package_imports_only_downwards_and_has_no_cycle():
    assert violations(PACKAGE) == []
    # 13 before the folders, with one cycle; 12 after; 14 since the step runs through runner -> graphs -> step;
    # 15 since config checks its values with checks
    assert len(longest_chain(import_graph(PACKAGE))) <= 15


@pytest.mark.parametrize("module, added, expected", [
    ("data/cache.py", "from ..training.loop import train", "data.cache imports training.loop: data may not import "
                                                           "training"),
    ("models/parts.py", "from ..pictures.sampling import generate", "models.parts imports pictures.sampling: models "
                                                                    "may not import pictures"),
    ("metrics/fid.py", "    from dcgan.training.state import TrainState", "metrics.fid imports training.state: "
                                                                          "metrics may not import training"),
    ("config.py", "from .data import cache", "config imports data.cache: shared may not import data"),
    ("training/loop.py", "from ..cli import main", "training.loop imports the CLI"),
    ("models/architectures.py", "from .dcgan import Generator", "import cycle: models.architectures -> "
                                                                "models.dcgan -> models.architectures"),
    ("training/step.py", "from .loop import train", "import cycle: training.loop -> training.start -> "
                                                    "training.execution -> training.step -> training.loop"),
])
def test_an_upward_import_or_a_cycle_is_caught(tmp_path, module, added, expected):
    copy = tmp_path / "dcgan"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []
    path = copy / module
    indented = added.startswith(" ")  # inside a function, as a lazy import would be
    path.write_text(path.read_text() + ("\n\ndef later():\n" + added if indented else "\n" + added) + "\n")
    assert expected in violations(copy)


def test_few_modules_at_the_top_and_every_folder_says_what_it_holds_and_may_import():
    top = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
    assert set(top) == SHARED | {"__init__", "__main__", "cli"}
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == FOLDERS
    for folder in FOLDERS:
        init = PACKAGE / folder / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{folder}/__init__.py needs a docstring saying what the folder holds"
        listed = {name.strip() for line in docstring.splitlines() if line.startswith("    ")
                  for name in re.split(r"\s{2,}", line.strip())[0].split(",")}
        modules = {path.stem for path in (PACKAGE / folder).glob("*.py")} - {"__init__"}
        assert modules == listed, f"{folder}/__init__.py should list its modules: {sorted(modules)}"
        allowed = re.search(r"May import: (.*?)\.", docstring.replace("\n", " ")).group(1)
        assert {name for name in FOLDERS if re.search(rf"\b{name}\b", allowed)} == MAY_IMPORT[folder] - {"shared"}


def test_the_readme_layout_shows_one_line_a_folder_in_the_order_of_dependency():
    repo = REPO
    for page, heading in (("README.md", "## Layout"), ("docs/layout.md", "# Layout")):  # the short tree, the full one
        text = (repo / page).read_text()
        layout = text[text.index(heading):]
        lines = [line.split()[0] for line in layout.splitlines()
                 if line.startswith("  ") and line.split()[0].endswith("/")]
        order = [name for name in MAY_IMPORT if name in FOLDERS]  # bottom to top, as each may import the earlier
        assert lines == [f"{name}/" for name in order], page


def test_the_tests_mirror_the_package():
    """A test folder per package folder, shared/ for the top-level modules, cli/ for the entry points and the repo;
    no test file at the top; each folder a package, so that two files of the same name can live in two folders."""
    tests = REPO / "tests"
    folders = {path.name for path in tests.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == FOLDERS | {"shared", "cli"}
    assert not list(tests.glob("test_*.py")), "a test file belongs in the folder of what it tests"
    assert all((tests / name / "__init__.py").is_file() for name in folders)
