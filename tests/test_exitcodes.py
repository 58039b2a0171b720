"""One exit-code table for every command: runner/exitcodes.py, documented once in
docs/operations.md ("Exit codes")."""

from __future__ import annotations

import ast
import re

from runner import exitcodes
from runner.config import PROJECT_ROOT


def defined_codes() -> dict[str, int]:
    return {name: value for name, value in vars(exitcodes).items() if name.startswith("EXIT_")}


def test_the_documented_table_is_the_module() -> None:
    text = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `(EXIT_[A-Z_]+)` \|", text, flags=re.MULTILINE)
    assert {name: int(code) for code, name in rows} == defined_codes()
    assert len(rows) == len(defined_codes())


def test_no_other_module_numbers_an_exit_code() -> None:
    numbered = []
    for path in sorted((PROJECT_ROOT / "runner").rglob("*.py")):
        # runner/bi/superset/.venv holds Superset's own install: thousands of modules, not ours
        if path.name == "exitcodes.py" or ".venv" in path.relative_to(PROJECT_ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and any(isinstance(t, ast.Name) and t.id.startswith("EXIT_")
                            for t in node.targets)):
                numbered.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert numbered == []


def test_argparse_usage_code_is_used_for_nothing_else() -> None:
    assert [name for name, code in defined_codes().items() if code == 2] == ["EXIT_USAGE"]
