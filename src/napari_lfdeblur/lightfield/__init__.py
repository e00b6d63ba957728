"""Light fields: the data type, readers per format, refocusing, pair synthesis."""

from .core import LightField

__all__ = ["LightField"]
