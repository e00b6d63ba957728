"""The package's dependency graph: no import cycles (function-level imports included), light-field code that
never reaches into the network package, and image files (io) that never reach into deblurring or the network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()) / "src" / "napari_lfdeblur"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                for alias in node.names:  # "from . import x" may name a module
                    if f"{target}.{alias.name}" in modules:
                        found.add(f"{target}.{alias.name}")
                if target in modules:
                    found.add(target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
        graph[name] = {m for m in found if m != name}
    return graph


GRAPH = _imports()


def _cycle_from(start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in GRAPH.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in seen and not start.startswith(nxt + ".") and not nxt.startswith(start + "."):
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not m.endswith("__init__") and "." in m))
def test_no_import_cycle(module):
    # a package's __init__ re-exporting its modules is not a cycle with them; anything else is
    cycle = _cycle_from(module)
    assert cycle is None or all(a.startswith(b) or b.startswith(a) for a, b in zip(cycle, cycle[1:])), cycle


def test_lightfield_code_does_not_import_the_network_package():
    reaching = {m: sorted(t for t in deps if t.startswith("napari_lfdeblur.network")) for m, deps in GRAPH.items()
                if m.startswith("napari_lfdeblur.lightfield")}
    assert not any(reaching.values()), {m: t for m, t in reaching.items() if t}


def test_image_files_do_not_import_deblurring_or_the_network():
    # io is what inference and network build on (chunks, pixels, atomic writes), never the other way round
    reaching = {m: sorted(t for t in deps if t.startswith(("napari_lfdeblur.inference", "napari_lfdeblur.network")))
                for m, deps in GRAPH.items() if m.startswith("napari_lfdeblur.io")}
    assert not any(reaching.values()), {m: t for m, t in reaching.items() if t}


def _private_imports_across_subpackages() -> list[str]:
    def subpackage(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 else ""  # "" for the package's top-level modules

    found = []
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__")
                           and f"{target}.{a.name}" not in GRAPH]  # a private module of one's own package is fine
                if private and subpackage(target) != subpackage(f"{package}._"):  # an __init__ is inside
                    found.append(f"{name} imports {private} from {target}")
    return found


def test_no_private_names_across_subpackages():
    assert _private_imports_across_subpackages() == []
