"""Names of a package loaded when first used (PEP 562), so that importing the package imports no torch."""

from __future__ import annotations

from importlib import import_module

__all__ = ["lazy_names"]


def lazy_names(package: str, table: dict[str, str], namespace: dict):
    """``(__getattr__, __dir__)`` for the package ``package`` whose globals are ``namespace``: a name of
    ``table`` (name -> module, relative to the package) is imported on first use and kept."""

    def __getattr__(name: str):
        if name in table:
            value = getattr(import_module(table[name], package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
