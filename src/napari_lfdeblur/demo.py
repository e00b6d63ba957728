"""``lfdeblur demo``: the whole story on the shipped data, as a figure and files.

Today it opens the shipped real light field (and a procedural one), prints a
summary, shows the parallax (views, an epipolar-plane image) and the focal
range (refocused images at near and far planes), and writes the outputs.  The
deblurring step joins once a default model ships.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ._io import atomic_path, save_image


def _epi(lf, row: int) -> np.ndarray:
    vc, _ = lf.center_index()
    return np.asarray(lf.data[vc, :, row, :, :], dtype=np.float32)  # (U, X, C)


def _figure(panels: list[tuple[str, np.ndarray]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, img) in zip(axes.flat, panels):
        img = np.clip(np.nan_to_num(img), 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  aspect="auto" if img.shape[0] < img.shape[1] / 4 else "equal", interpolation="nearest")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _deblur_step(lf, out: Path, report: dict) -> list:
    """Deblur a refocused (defocused) image with the shipped model; PSNR/SSIM against the centre view."""
    from .nn.checkpoint import default_model_path

    if not default_model_path().exists():
        print("The default model is not shipped yet: skipping the deblurring step.")
        report["deblur"] = "skipped: no default model"
        return []
    from .inference.deblur import deblur
    from .lightfield.pairs import make_pairs
    from .training.metrics import psnr_ssim

    # a plane behind the flowers: the flowers come out defocused, as with a wide aperture
    pair = make_pairs(lf, apertures=(0.66,), focus=[0.3], crop="auto", skip_duplicates=False)[0]
    restored = deblur(pair.blurred, model="default")
    before = psnr_ssim(pair.blurred, pair.sharp)
    after = psnr_ssim(restored, pair.sharp)
    print(f"Deblurred a refocused image: PSNR {before[0]:.2f} -> {after[0]:.2f} dB, "
          f"SSIM {before[1]:.3f} -> {after[1]:.3f} (against the all-in-focus centre view)")
    report["deblur"] = {"psnr_before": before[0], "psnr_after": after[0], "ssim_before": before[1], "ssim_after": after[1]}
    report["outputs"]["blurred"] = str(save_image(out / "plants_blurred.png", pair.blurred))
    report["outputs"]["deblurred"] = str(save_image(out / "plants_deblurred.png", restored))
    return [
        (f"defocused (refocus d=+0.3): {before[0]:.1f} dB", pair.blurred),
        (f"deblurred, default model: {after[0]:.1f} dB", restored),
        ("all-in-focus centre view", pair.sharp),
    ]


def run_demo(out: str | Path = "lfdeblur-demo", gui: bool = False) -> dict:
    """Run the demo; return a dict of what was written and measured."""
    from .sample_data import sample_lightfield

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: dict = {"outputs": {}}

    lf = sample_lightfield("lytro_plants").compute()
    summary = lf.summary()
    print("Shipped sample light field:")
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"  {k:<{width}}  {v}")
    report["lightfield"] = summary

    V, U = lf.grid
    row = lf.view_shape[0] // 2
    panels = [
        ("centre view", lf.center_view()),
        ("view (0, 0) top-left", lf.view(0, 0)),
        (f"view ({V - 1}, {U - 1}) bottom-right", lf.view(V - 1, U - 1)),
        (f"EPI u-x at y={row}", _epi(lf, row)),
    ]
    try:
        from .lightfield.refocus import refocus
    except ImportError:  # pragma: no cover - refocus ships with the package
        refocus = None
    if refocus is not None:
        # plants: about -1 px per view step brings the flowers into focus
        for d in (-1.0, 0.0, 0.8):
            img = refocus(lf, d, aperture=1.0)
            panels.append((f"refocused d={d:+.1f} px/view", img))
            report["outputs"][f"refocus_{d:+.1f}"] = str(save_image(out / f"plants_refocus_{d:+.1f}.png", img))

    report["outputs"]["centre"] = str(save_image(out / "plants_centre.png", lf.center_view()))
    deblurred = _deblur_step(lf, out, report)
    if deblurred:
        panels.extend(deblurred)
    fig = _figure(panels, out / "demo_lightfield.png", "Lytro plants (real, CC BY 4.0): views, parallax, focal range")
    report["outputs"]["figure"] = str(fig)
    report["seconds"] = round(time.perf_counter() - t0, 2)

    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str))
    print(f"Wrote {fig} and {len(report['outputs'])} images to {out}/ in {report['seconds']} s")

    if gui:
        _open_gui(lf)
    return report


def _open_gui(lf):  # pragma: no cover - interactive
    import napari

    from ._napari._layers import lightfield_layers
    from ._napari._widget_lightfield import LightFieldWidget

    viewer = napari.Viewer(title="napari-lfdeblur demo")
    for data, kwargs, _ in lightfield_layers(lf):
        viewer.add_image(data, **kwargs)
    viewer.window.add_dock_widget(LightFieldWidget(viewer), name="Light field", area="right")
    napari.run()
