"""Sphinx configuration of the napari-lfdeblur documentation.

Build (warnings are errors, as in CI)::

    pip install ".[docs]"
    sphinx-build -E -W --keep-going -n -b html docs docs/_build/html

or ``tox -e docs``.  (``-E`` rebuilds every page: an incremental build only
reports the warnings of the pages it rebuilds.)  Nothing here imports napari
or Qt, and nothing needs a GPU.  Pages are Markdown (MyST); the API reference is
autodoc over the docstrings (numpy style, napoleon); the CLI reference is
rendered from ``napari_lfdeblur.cli.build_parser()`` at build time
(``_ext/cli_reference.py``), so both follow the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
# the installed package comes first; a source checkout whose dependencies are installed builds too
sys.path.append(str(HERE.parent / "src"))

import napari_lfdeblur  # noqa: E402

project = "napari-lfdeblur"
author = "napari-lfdeblur developers"
copyright = "napari-lfdeblur developers (BSD-3-Clause)"
release = napari_lfdeblur.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "lfdeblur_docs",
    "cli_reference",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
language = "en"

# MyST: anchors for ## and ### headings, so pages can link to sections
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# autodoc: the public names as ``napari_lfdeblur.<name>``, in source order
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# defaults as values: train() and finetune() list the TrainConfig options in their signature (set at import),
# which the source text, read by autodoc_preserve_defaults, does not hold
autodoc_preserve_defaults = False
add_module_names = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# Nitpicky mode (-n) checks every cross-reference.  CI has no network, so no
# intersphinx inventories: type hints naming the standard library's and
# numpy/torch/dask/zarr objects cannot resolve and are ignored.  Every
# reference to this project's objects must resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(collections\.abc|dataclasses|os|pathlib|numpy|torch|dask|zarr)\..*"),
]

html_theme = "furo"
html_title = f"napari-lfdeblur {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
