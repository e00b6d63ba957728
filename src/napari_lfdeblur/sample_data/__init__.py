"""Sample light fields shipped with the package (and procedural ones)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LightFieldError

_HERE = Path(__file__).resolve().parent
PLANTS_ESLF = _HERE / "lytro_plants_IMG_0001_10x10.eslf.png"

SAMPLES = ("lytro_plants", "synthetic")


def sample_lightfield(name: str = "lytro_plants", **options):
    """Return a shipped sample light field as a ``LightField``.

    ``"lytro_plants"``: a real Lytro (1st gen) capture, 10 x 10 views of
    256 x 256 RGB (CC BY 4.0, see ``sample_data/ATTRIBUTION.md``); refocusing
    at about -1 px per view step brings the flowers into focus.
    ``"synthetic"``: a procedural scene with ground-truth disparity;
    ``options`` go to ``synthetic_lightfield`` (e.g. ``seed=3``).
    """
    if name == "lytro_plants":
        from ..lightfield.readers import read_lightfield

        lf = read_lightfield(PLANTS_ESLF, format="eslf", views=(10, 10))
        lf.metadata.update(
            name="Lytro plants IMG_0001",
            licence="CC BY 4.0, J. F. Jaramillo Hernandez and M. F. Hernandez Baena (osf.io/qrm2x)",
        )
        return lf
    if name == "synthetic":
        from ..lightfield.synthetic import synthetic_lightfield

        return synthetic_lightfield(**options)
    raise LightFieldError(f"Unknown sample light field {name!r}; choose one of {', '.join(SAMPLES)}.")
