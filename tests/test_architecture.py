"""The package layout: each stage imports only the stages before it, the shared root modules import no stage, and no
library module reaches outside the repository for its documentation."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "nlvl_tf"
STAGES = ("video", "data", "model", "eval", "train", "serve")
SHARED = ("configs", "cli", "runtime", "workdir")
# Modules that run the whole loop or keep an old import path alive may import any stage.
TOP = ("demo", "export")


def imported_stages(path):
    """The nlvl_tf stages and root modules a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nlvl_tf"):
            parts = node.module.split(".")
            names = [parts[1]] if len(parts) > 1 else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".")[1] for alias in node.names if alias.name.startswith("nlvl_tf.")]
        found.update(names)
    return found


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).parts
        yield path, relative[0] if len(relative) > 1 else path.stem


def test_each_stage_imports_only_earlier_stages_and_shared_modules():
    problems = []
    for path, owner in modules():
        if owner in TOP:
            continue
        for imported in imported_stages(path) - {owner}:
            if owner in SHARED:
                allowed = imported in SHARED
            else:
                allowed = imported in SHARED or STAGES.index(imported) < STAGES.index(owner)
            if not allowed:
                problems.append(f"{path.relative_to(PACKAGE.parent)} ({owner}) imports {imported}")
    assert not problems, "\n".join(problems)


def test_the_layout_is_the_documented_one():
    packages = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert packages <= set(STAGES) and {"data", "model", "eval", "train", "serve"} <= packages
    root = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert root == set(SHARED) | set(TOP)


def test_docstrings_cite_only_files_in_the_repository():
    cited = re.compile(r"reference_spec|DESIGN\.md|\bspec \d")
    offenders = [str(path) for path, _ in modules() if cited.search(path.read_text(encoding="utf-8"))]
    assert not offenders
