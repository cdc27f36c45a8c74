"""Structure rules import-linter cannot express (run by ``make lint``).

- No ``_private`` name crosses a package boundary: ``from hybridrec.<pkg>... import _name`` (or
  ``import hybridrec.<pkg>._mod``... ``from hybridrec import _mod``) from outside ``<pkg>`` is
  refused; ``hybridrec._core`` (the shared internals) and ``hybridrec._errors`` are exempt.
  A package is a sub-package of ``hybridrec`` or a top-level module (``cli.py`` is ``cli``).
- No source file over 600 lines (but the SIMD and synthetic-data modules), no function over
  120 lines.

Exit code 1 when a rule is broken.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "hybridrec"
SHARED = {"_core", "_errors"}
MAX_FILE_LINES = 600
LONG_FILES_ALLOWED = {"mf/_simd.py", "data/_synth.py"}
MAX_FUNCTION_LINES = 120


def package_of(file: Path) -> str:
    """``mf`` for ``mf/_model.py``, ``cli`` for ``cli.py``, ``""`` for ``__init__.py``."""
    parts = file.relative_to(ROOT).with_suffix("").parts
    return "" if parts == ("__init__",) else parts[0]


def shown(file: Path) -> str:
    """``src/hybridrec/...``: the path as the repository names it."""
    return file.relative_to(ROOT.parents[1]).as_posix()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(file: Path, tree: ast.AST) -> Iterator[str]:
    """``file:line: what`` for each private name ``file`` imports from another package."""
    own = package_of(file)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            path = node.module.split(".")
            if path[0] != "hybridrec":
                continue
            # ``from hybridrec import x``: the package is x; else the module's first part
            targets = [(a.name, [a.name]) for a in node.names] if len(path) == 1 else None
            for package, names in targets or [(path[1], [a.name for a in node.names])]:
                if package in SHARED or package == own:
                    continue
                private = [p for p in path[2:] if _private(p)] + [n for n in names if _private(n)]
                if private:
                    what = ", ".join(private)
                    yield f"{shown(file)}:{node.lineno}: imports {what} from {package}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                path = alias.name.split(".")
                if path[0] != "hybridrec" or len(path) < 2:
                    continue
                if path[1] not in SHARED and path[1] != own and any(map(_private, path[1:])):
                    yield f"{shown(file)}:{node.lineno}: imports {alias.name}"


def long_code(file: Path, tree: ast.AST, n_lines: int) -> Iterator[str]:
    rel = file.relative_to(ROOT).as_posix()
    if n_lines > MAX_FILE_LINES and rel not in LONG_FILES_ALLOWED:
        yield f"{shown(file)}: {n_lines} lines (at most {MAX_FILE_LINES})"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield (
                    f"{shown(file)}:{node.lineno}: function {node.name} has {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )


def violations() -> list[str]:
    found: list[str] = []
    for file in sorted(ROOT.rglob("*.py")):
        text = file.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(file))
        found.extend(private_imports(file, tree))
        found.extend(long_code(file, tree, text.count("\n") + 1 if text else 0))
    return found


def main() -> int:
    found = violations()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} structure rule(s) broken", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
