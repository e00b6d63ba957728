"""Models known to this napari session: the Train widget registers what it trains, the Deblur widget offers them
beside the shipped default, the authors' published weights and checkpoint files."""

from __future__ import annotations

from collections.abc import Callable

from psygnal import Signal

from ..errors import LFDeblurError


class _ModelRegistry:
    changed = Signal()

    def __init__(self):
        self._models: dict[str, object] = {}

    def register(self, name: str, model_or_path) -> None:
        self._models[name] = model_or_path
        self.changed.emit()

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str):
        return self._models[name]


session_models = _ModelRegistry()

DEFAULT = "default (shipped)"
AUTHORS = "authors' DRBNet (downloaded on first use, AGPL-licensed weights)"
FROM_FILE = "checkpoint file (ours or the authors' .pth)"


def device_choices(_widget=None) -> list[str]:
    """Choices of a device picker: auto first, then what torch can use here."""
    try:
        from ..devices import available_devices

        return ["auto", *available_devices()]
    except Exception:  # torch missing or broken: still show the widget
        return ["auto", "cpu"]


def model_choices(_widget=None) -> list[str]:
    return [DEFAULT, FROM_FILE, *session_models.names()]


def deblur_model_choices(_widget=None) -> list[str]:
    """The Deblur widget's list: the authors' published weights too (downloaded only after a confirmation)."""
    return [DEFAULT, AUTHORS, FROM_FILE, *session_models.names()]


def authors_downloaded() -> bool:
    """Whether the authors' checkpoint is in the per-user cache already (nothing is downloaded)."""
    from ..network.authors import is_downloaded

    return is_downloaded()


def confirm_authors_download(parent=None) -> bool:
    """Ask the user before downloading the authors' checkpoint: size, licence, where it goes (tests replace it)."""
    from qtpy.QtWidgets import QMessageBox

    from ..network.authors import LICENCE, PAGE_URL, SOURCE, authors_checkpoint_path, size_text

    text = (
        f"Download the checkpoint published by the DRBNet authors (Ruan et al., CVPR 2022)?\n\n"
        f"Size: {size_text()}, downloaded once from Google Drive ({PAGE_URL}).\n"
        f"Kept in: {authors_checkpoint_path().parent}\n"
        f"It then works offline.\n\n"
        f"Licence: the weights are {LICENCE}, like the authors' code ({SOURCE}); "
        "redistributing them, or software that bundles them, must follow its terms."
    )
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    return QMessageBox.question(parent, "Download the authors' DRBNet?", text, yes | no, no) == yes


def resolve_choice(choice: str, path) -> object:
    """What to pass as ``model=`` to the API for a picker choice."""
    if choice == DEFAULT:
        return "default"
    if choice == AUTHORS:
        if not authors_downloaded():  # never fetched behind the user's back: the entry asks first
            raise LFDeblurError(
                "The authors' checkpoint is not downloaded yet: pick their entry in the model list again and "
                "confirm the download (or choose 'checkpoint file' and pick their .pth)."
            )
        return "authors"
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
