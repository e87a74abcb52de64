"""The API is a thin shell over the feature packages: it never reaches into the worker
side (activities/), whose code it would otherwise drag into the API process."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_api_does_not_import_activities() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in imported_modules(path.read_text()) if m.split(".")[0] == "activities"
        )
        for path in sorted((REPO / "api").rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_check_sees_an_import_of_activities() -> None:
    assert "activities.regions" in imported_modules("from activities.regions import x")
    assert "activities" in imported_modules("import activities")
