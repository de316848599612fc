"""Dependencies point one way (issue 10): accounts <- exams <- proctoring <- review. exams says what happened
(exams.signals) and what it can be extended with (exams.hooks); proctoring subscribes and registers in its
AppConfig.ready(). Review (proctoring/review, a nested app) builds on proctoring, which never imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# app -> the modules it must never import (a package and everything under it), at the top of a file or inside a
# function.
FORBIDDEN = {
    "accounts": ("exams", "proctoring"),
    "exams": ("proctoring",),
    "proctoring": ("proctoring.review",),
}
# Apps nested in another app's folder, which are not part of it.
NESTED_APPS = {"proctoring": ("review",)}


def files_of(app: str) -> list[Path]:
    nested = [ROOT / app / name for name in NESTED_APPS.get(app, ())]
    return [path for path in sorted((ROOT / app).rglob("*.py")) if not any(n in path.parents for n in nested)]


def forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_an_app_imports_only_what_it_builds_on(app):
    offences = []
    for path in files_of(app):
        for module in imported_modules(path):
            if forbidden(module, FORBIDDEN[app]):
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_proctoring_is_checked_without_the_review_app_inside_it():
    files = files_of("proctoring")
    assert ROOT / "proctoring" / "consumers.py" in files
    assert not [path for path in files if "review" in path.relative_to(ROOT / "proctoring").parts]
    assert forbidden("proctoring.review.models", ("proctoring.review",))
    assert not forbidden("proctoring.reviewing", ("proctoring.review",))


def test_the_check_finds_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from proctoring.rules import step\n    return step\n")
    assert imported_modules(sample) == {"proctoring.rules"}


def relative_imports(path: Path) -> set[str]:
    """The sibling modules a module imports with `from .x import ...`, anywhere in it."""
    return {
        node.module
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }


def test_the_vision_engine_has_no_import_circle_through_its_error():
    vision = ROOT / "proctoring" / "vision"
    assert imported_modules(vision / "errors.py") == {"__future__"} and not relative_imports(vision / "errors.py")
    # base -> packs -> registry -> base was a circle: the model modules take ModelPackError from errors.py.
    for name in ("base", "registry", "blazeface", "arcface", "facemesh", "ssd", "yolo", "insightface_pack"):
        assert "packs" not in relative_imports(vision / f"{name}.py"), name


def uncommented_local_imports(path: Path) -> list[int]:
    """The lines of imports inside functions with no comment saying why: on the import itself, or on a line just
    above its block of imports."""
    lines = path.read_text().splitlines()
    found = []
    for function in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            above = node.lineno - 2
            while above >= 0 and (lines[above].strip().startswith(("import ", "from ")) or not lines[above].strip()):
                above -= 1
            said = any("#" in line for line in lines[node.lineno - 1 : node.end_lineno]) or (
                above >= 0 and lines[above].strip().startswith("#")
            )
            if not said:
                found.append(node.lineno)
    return found


@pytest.mark.parametrize("app", ["accounts", "exams", "proctoring", "examsite"])
def test_imports_are_at_the_top_unless_a_comment_says_why(app):
    offences = []
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            offences += [f"{path.relative_to(ROOT)}:{line}" for line in uncommented_local_imports(path)]
    assert offences == []


def test_the_import_check_finds_an_unexplained_import_and_accepts_an_explained_one(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    import json\n    return json\n\n\n"
        "def g():\n    import cv2  # lazy: heavy\n    return cv2\n\n\n"
        "def h():\n    # Heavy: at the first photo.\n    import numpy\n\n    import cv2\n    return cv2, numpy\n"
    )
    assert uncommented_local_imports(sample) == [2]


def test_selectors_only_read_and_never_reach_into_services():
    selectors = sorted(
        path for app in ("accounts", "exams", "proctoring") for path in (ROOT / app).rglob("selectors.py")
    )
    assert len(selectors) == 5
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in selectors
        for module in imported_modules(path)
        if "services" in module.split(".")
    ]
    assert offences == []
