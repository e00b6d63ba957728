"""Public names that import their module on first use, so that importing a package stays cheap (no torch).

A package lists ``name -> module`` and takes its ``__getattr__`` and ``__dir__`` from :func:`lazy_names`.
"""

from __future__ import annotations

from importlib import import_module


def lazy_names(package: str, table: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps a public name to the module (relative to
    ``package``) defining it; a name is imported once and then kept in ``namespace`` (the package's globals)."""

    def __getattr__(name: str):
        if name in table:
            value = getattr(import_module(table[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
