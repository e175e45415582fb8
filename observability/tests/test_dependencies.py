"""``scoring`` depends on ``observability``, never the reverse.

Observability's pages reach scores, scorers and rules only through template
tags that ``scoring`` provides and the hooks of observability/extensions.py;
its modules (tests aside, which exercise both apps) import nothing of scoring.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def test_no_module_of_observability_imports_scoring():
    offenders = []
    modules = [p for p in APP.rglob("*.py") if "tests" not in p.relative_to(APP).parts]
    assert len(modules) > 10  # the scan really looked at the app
    for path in modules:
        for name in imported_modules(path):
            if name == "scoring" or name.startswith("scoring."):
                offenders.append(f"{path.relative_to(APP.parent)} imports {name}")
    assert offenders == []
