"""No test module mints a token at import: a token minted then may expire before a test uses
it on a busy machine (a 300 s service token did, in a 344 s run: issue 14). Module-level
headers are `FreshHeaders(...)`, which mint whenever they are read."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MINTERS = {
    "bearer",
    "admin_headers",
    "service_headers",
    "issue_access",
    "issue_service",
    "issue_refresh",
}


def _calls_at_import(node: ast.AST) -> list[str]:
    """Names of minting calls that run when `node` is evaluated (not inside a lambda)."""
    if isinstance(node, ast.Lambda):
        return []
    found = []
    if isinstance(node, ast.Call):
        callee = node.func
        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
        if name in MINTERS:
            found.append(name)
    for child in ast.iter_child_nodes(node):
        found += _calls_at_import(child)
    return found


def _minted_at_import(path: Path, root: Path = TESTS) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for statement in tree.body:  # module level only: functions run when a test calls them
        if isinstance(statement, ast.Assign | ast.AnnAssign | ast.Expr):
            for name in _calls_at_import(statement):
                found.append(f"{path.relative_to(root)}:{statement.lineno} {name}()")
    return found


def test_no_test_module_mints_a_token_at_import() -> None:
    offenders = [hit for path in sorted(TESTS.rglob("*.py")) for hit in _minted_at_import(path)]
    assert offenders == []


def test_the_check_sees_a_token_minted_at_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text(
        "ADMIN = admin_headers()\n"
        "LATER = FreshHeaders(lambda: bearer('a'))\n"
        "X = {'Authorization': f'Bearer {codec.issue_service(\"t\")}'}\n"
    )
    assert _minted_at_import(module, tmp_path) == [
        "test_x.py:1 admin_headers()",
        "test_x.py:3 issue_service()",
    ]
