"""napari sample-data contributions."""

from __future__ import annotations

from ..sample_data import sample_lightfield
from ._layers import lightfield_layers


def lytro_plants():
    return lightfield_layers(sample_lightfield("lytro_plants"), name="Lytro plants")


def synthetic_scene():
    lf = sample_lightfield("synthetic", seed=0)
    return lightfield_layers(lf, name="procedural light field")
