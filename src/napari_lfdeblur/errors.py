"""The project's own exception types; they subclass ``ValueError``/``RuntimeError`` too, so generic handlers keep
working."""

from __future__ import annotations


class LFDeblurError(Exception):
    """Base class of every error raised on purpose by napari-lfdeblur."""


class LightFieldError(LFDeblurError, ValueError):
    """A path or array could not be read as a light field."""


class ModelError(LFDeblurError, ValueError):
    """A network configuration or checkpoint is invalid or incompatible."""


class DeblurInputError(LFDeblurError, ValueError):
    """An image given to ``deblur`` has a shape, dtype or content it cannot handle."""


class TrainingError(LFDeblurError, RuntimeError):
    """Training data or a training run is invalid."""


class OptionError(TrainingError, TypeError):
    """A keyword that is not a training option (``train(..., stepz=10)``): a TypeError too, as Python's own
    error for an unexpected keyword argument is."""


class ImageFileError(DeblurInputError, LightFieldError, TrainingError):
    """An image file could not be read (missing, damaged, a format not read here) or an image cannot be
    written in the format asked for (a stack as PNG, 16-bit colour PNG, ...).

    Deblurring, light-field reading and training read image files through one decoder, so code catching
    ``DeblurInputError``, ``LightFieldError`` or ``TrainingError`` catches it too.
    """


class OutOfMemoryError(LFDeblurError, MemoryError):
    """The device ran out of memory even after shrinking the work."""


class OutputError(LFDeblurError, OSError):
    """An output could not be written: a read-only or full disk, a file where a folder should be, ...

    ``errno`` and ``filename`` are those of the underlying OSError; the message says what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if len(self.args) == 1 else OSError.__str__(self)
