"""The web server never imports Ray (ray-project/ray#45570: `ray.init` in the Streamlit process replaces its
SIGTERM handler off the main thread): every import the app's pages can reach, lazy ones inside functions
included, is followed through the vitdemo package, and none of them is ray or the module that imports it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str) -> Path | None:
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path, package: str, *, top_level: bool = False) -> set[str]:
    """Every module `path` imports anywhere in it (top level, functions, TYPE_CHECKING blocks excluded), with
    `from pkg import mod` counted as pkg.mod when that is a module; `top_level`: only what importing it runs."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    if top_level:  # the module's own statements (and its if/try blocks), not its functions' and classes' bodies
        tree = ast.Module(_statements(tree.body), type_ignores=[])
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names if _module_file(f"{module}.{a.name}")}
    return found


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """A block's statements with those of its if/try/with blocks, not those inside functions or classes."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        found.append(node)
        for field in ("body", "orelse", "finalbody"):
            found += _statements(getattr(node, field, None) or [])
        for handler in getattr(node, "handlers", None) or []:
            found += _statements(handler.body)
    return found


def reachable(starts: list[Path], *, top_level: bool = False) -> set[str]:
    """Every module reachable from the files `starts` through vitdemo's own modules (`top_level`: through what
    importing them runs, as opening a page does)."""
    seen: set[str] = set()
    todo = [(p, "vitdemo") for p in starts]
    while todo:
        path, package = todo.pop()
        for name in imports_of(path, package, top_level=top_level):
            if name in seen:
                continue
            seen.add(name)
            file = _module_file(name) if name.split(".")[0] == "vitdemo" else None
            if file is not None:
                todo.append((file, name if file.name == "__init__.py" else name.rsplit(".", 1)[0]))
    return seen


def _ray(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "ray" or m.startswith("ray.") or m == "vitdemo.runs.ray_exec"}


def test_the_app_never_imports_ray_not_even_lazily() -> None:
    app = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "app_pages").glob("*.py"))]
    found = reachable(app)
    assert {"vitdemo.runs.queue", "vitdemo.runs.cluster", "vitdemo.ui.train"} <= found  # it does walk the app
    assert _ray(found) == set()


def test_the_walk_would_see_ray_where_it_is_imported() -> None:
    """The same walk from the command line reaches Ray (the CLI and the worker do talk to it)."""
    assert _ray(reachable([REPO_ROOT / "vitdemo" / "cli" / "main.py"])) >= {"ray", "vitdemo.runs.ray_exec"}


def test_opening_a_page_never_imports_torchvision() -> None:
    """torchvision's import takes seconds (it pulls in torch._dynamo): a page that imported it at its top made its
    first visit wait for it (Evaluate's: 5 of its 6 seconds, through the map smoothing). It is imported where it
    is used: transfer models, the detector, a dataset download."""
    app = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "app_pages").glob("*.py"))]
    found = reachable(app, top_level=True)
    assert {"vitdemo.ui.evaluate", "vitdemo.explain.readable", "vitdemo.ui.compare"} <= found  # it walks the pages
    assert {m for m in found if m.split(".")[0] == "torchvision"} == set()
