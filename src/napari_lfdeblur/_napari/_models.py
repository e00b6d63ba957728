"""Models known to this napari session: the Train widget registers what it trains,
the Deblur widget offers them beside the shipped default and checkpoint files."""

from __future__ import annotations

from typing import Callable

from psygnal import Signal


class _ModelRegistry:
    changed = Signal()

    def __init__(self):
        self._models: dict[str, object] = {}

    def register(self, name: str, model_or_path) -> str:
        self._models[name] = model_or_path
        self.changed.emit()
        return name

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str):
        return self._models[name]


session_models = _ModelRegistry()

DEFAULT = "default (shipped)"
FROM_FILE = "checkpoint file (ours or the authors' .pth)"


def device_choices(_widget=None) -> list[str]:
    """Choices of a device picker: auto first, then what torch can use here."""
    try:
        from ..nn.devices import available_devices

        return ["auto", *available_devices()]
    except Exception:  # torch missing or broken: still show the widget
        return ["auto", "cpu"]


def model_choices(_widget=None) -> list[str]:
    return [DEFAULT, FROM_FILE, *session_models.names()]


def resolve_choice(choice: str, path) -> object:
    """What to pass as ``model=`` to the API for a picker choice."""
    if choice == DEFAULT:
        return "default"
    if choice == FROM_FILE:
        return str(path)
    return session_models.get(choice)


def on_models_changed(callback: Callable[[], None]) -> None:
    """Call ``callback`` when a model is registered, until its widget is closed."""

    def guarded():
        try:
            callback()
        except RuntimeError:  # the widget's Qt object was deleted (dock closed)
            session_models.changed.disconnect(guarded)

    session_models.changed.connect(guarded)
