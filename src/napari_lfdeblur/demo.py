"""``lfdeblur demo``: the whole story on the shipped data, as figures, files and (optionally) a napari window.

The shipped real light field (Lytro plants) and a procedural one (exact ground truth): their views, focal range,
training pairs and one deblurred pair each, written atomically to ``out``; napari and Qt live in
``_napari/_demo_gui.py``."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .io import atomic_path, save_image

if TYPE_CHECKING:
    from .lightfield.core import LightField

#: the procedural scene of the demo: like the training scenes (11x11 views, +-1 px/view), a seed they skip
PROCEDURAL: dict[str, Any] = {"seed": 2024, "views": 11, "size": 256, "disparity_range": (-1.0, 1.0)}
#: pairs per light field: two aperture sizes x three focus planes over its disparity range
PAIR_APERTURES = (0.5, 1.0)
PAIR_FOCUS = 3
#: refocused planes shown across each light field's focal range (plus one plane outside it)
N_PLANES = 3


def no_model_message(path: Path) -> str:
    return (
        f"No default model is installed ({path} is missing), so the deblurring step is skipped.\n"
        "To get one: reinstall napari-lfdeblur from a release (the wheel ships weights/default.pt), or train your\n"
        "own and pass it to the demo:\n"
        "    lfdeblur train synthetic -o runs/mine --steps 5000\n"
        "    lfdeblur demo --model runs/mine/best.pt\n"
        "The authors' single_image_defocus_deblurring.pth works too: lfdeblur demo --model path/to/it"
    )


@dataclass
class DeblurCase:
    """One deblurred image: the blurry input, the network's result (None without a model), the sharp target."""

    name: str
    label: str
    blurred: np.ndarray
    sharp: np.ndarray
    target: str
    restored: np.ndarray | None = None
    scores: dict = field(default_factory=dict)


@dataclass
class Demo:
    """What the demo computed: the light fields, refocused planes, pairs and deblurred images, and its report."""

    out: Path
    plants: LightField
    procedural: LightField
    ranges: dict = field(default_factory=dict)  # name -> (lo, hi) px/view
    focal: dict = field(default_factory=dict)  # name -> [(disparity, image)]
    pairs: dict = field(default_factory=dict)  # name -> [Pair]
    cases: list = field(default_factory=list)  # [DeblurCase]
    model: object = None  # what was passed to deblur (path or module), None when skipped
    report: dict = field(default_factory=lambda: {"outputs": {}})


# ------------------------------------------------------------------ figures
def _epi(lf, row: int, width: int = 96) -> np.ndarray:
    """The u-x epipolar-plane image through the centre row of views, a ``width``-pixel crop around the middle."""
    vc, _ = lf.center_index()
    epi = np.asarray(lf.data[vc, :, row, :, :], dtype=np.float32)  # (U, X, C)
    x0 = max(0, epi.shape[1] // 2 - width // 2)
    return epi[:, x0 : x0 + width]


def _show(ax, img, opts: dict):
    img = np.nan_to_num(np.asarray(img, dtype=np.float32))
    if img.ndim == 2 or "cmap" in opts:
        img = img[..., 0] if img.ndim == 3 else img
        im = ax.imshow(img, cmap=opts.get("cmap", "gray"), vmin=opts.get("vmin"), vmax=opts.get("vmax"),
                       interpolation="nearest")
        if opts.get("colorbar"):
            ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        return
    img = np.clip(img, 0, 1)
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest", aspect=opts.get("aspect", "equal"))


def _figure(rows: list, path: Path, title: str) -> Path:
    """A grid of panels; ``rows`` is a list of (row title, [(label, image[, options])]); saved atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(3.3 * cols, 3.5 * len(rows) + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, (row_title, panels) in enumerate(rows):
        for c, panel in enumerate(panels):
            label, img, *rest = panel
            ax = axes[r, c]
            _show(ax, img, rest[0] if rest else {})
            ax.set_title(label, fontsize=8.5)
        axes[r, 0].text(-0.06, 0.5, row_title, transform=axes[r, 0].transAxes, rotation=90, fontsize=10,
                        ha="right", va="center", fontweight="bold")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0.02, 0, 1, 0.98))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


# ------------------------------------------------------------------ steps
def _print_summary(title: str, summary: dict):
    print(title)
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"  {k:<{width}}  {v}")


def _focal_range(demo: Demo, name: str, lf, tag: str):
    from .lightfield.disparity import estimate_disparity_range
    from .lightfield.refocus import refocus

    lo, hi = estimate_disparity_range(lf)
    demo.ranges[name] = (lo, hi)
    outside = hi + 0.5 * max(hi - lo, 1.0)  # beyond the scene: nothing is in focus
    planes = []
    for d in [*np.linspace(lo, hi, N_PLANES), outside]:
        img = refocus(lf, float(d), aperture=1.0)
        planes.append((float(d), img))
        key = f"{tag}_refocus_{d:+.2f}"
        demo.report["outputs"][key] = str(save_image(demo.out / f"{key}.png", img))
    demo.focal[name] = planes
    demo.report.setdefault("focal_range", {})[name] = {"lo": round(lo, 3), "hi": round(hi, 3),
                                                       "planes": [round(d, 3) for d, _ in planes]}
    print(f"  {name}: {lo:+.2f} .. {hi:+.2f} px/view (estimated from the views); refocused at "
          f"{', '.join(f'{d:+.2f}' for d, _ in planes[:-1])} and, outside the range, {outside:+.2f}")


def _make_pairs(demo: Demo, name: str, lf, scene: str):
    from .lightfield.pairs import make_pairs, write_pairs

    pairs = make_pairs(lf, apertures=PAIR_APERTURES, focus=PAIR_FOCUS, scene=scene)
    manifest = write_pairs(pairs, demo.out / "pairs")
    demo.pairs[name] = pairs
    psnrs = ", ".join(f"{p.info['psnr']:.1f}" for p in pairs)
    print(f"  {len(pairs)} pairs from the {name} (apertures {PAIR_APERTURES}, {PAIR_FOCUS} focus planes; "
          f"blurred-vs-sharp PSNR {psnrs} dB)")
    return manifest


def _resolve_model(model):
    """(what to pass to deblur, a description) or (None, the reason) when there is none."""
    from .network.checkpoint import default_model_path

    if model is None or (isinstance(model, str) and model.strip().lower() == "default"):
        path = default_model_path()
        if not path.exists():
            return None, no_model_message(path)
        return str(path), f"the default model ({path})"
    if isinstance(model, (str, os.PathLike)):
        return str(model), f"the model {model}"
    return model, f"the given {type(model).__name__}"


def _deblur_step(demo: Demo, model) -> None:
    from .inference.runtime import resolve_runtime
    from .training.metrics import psnr_ssim

    demo.model, description = _resolve_model(model)
    if demo.model is None:
        print(description)
        demo.report["deblur"] = {"skipped": "no default model installed", "model": None,
                                 **{case.name: dict(case.scores) for case in demo.cases}}
        return
    from .inference.deblur import deblur

    runtime = resolve_runtime(demo.model, device="auto")
    net = runtime.net
    cfg = getattr(net, "config", {}) or {}
    print(f"Deblurring with {description}: DRBNet base {cfg.get('base', '?')} on {runtime.device} "
          f"({runtime.precision})")
    print(f"  {'':<40}{'PSNR blurry -> deblurred':<28}SSIM blurry -> deblurred")
    scores = {"model": str(demo.model) if isinstance(demo.model, str) else description}
    for case in demo.cases:
        t0 = time.perf_counter()
        case.restored = deblur(case.blurred, model=net)
        seconds = time.perf_counter() - t0
        after = psnr_ssim(case.restored, case.sharp)
        case.scores.update(psnr_after=after[0], ssim_after=after[1], seconds=round(seconds, 2))
        s = case.scores
        print(f"  {case.label:<40}{s['psnr_before']:>5.2f} -> {s['psnr_after']:5.2f} dB{'':<11}"
              f"{s['ssim_before']:.3f} -> {s['ssim_after']:.3f}{'':<10}({seconds:.1f} s)")
        demo.report["outputs"][f"{case.name}_deblurred"] = str(
            save_image(demo.out / f"{case.name}_deblurred.png", case.restored))
        scores[case.name] = dict(case.scores)
    demo.report["deblur"] = scores


def _pick(pairs, aperture: float, focus_index: int | None):
    """The pair with this aperture (and focus plane, when given); the most blurred of them."""
    chosen = [p for p in pairs if abs(p.info["aperture"] - aperture) < 1e-6
              and focus_index in (None, p.info["focus_index"])] or list(pairs)
    return min(chosen, key=lambda p: p.info["psnr"])


def _deblur_cases(demo: Demo) -> list:
    from .training.metrics import psnr_ssim

    cases = []
    for name, tag, aperture, focus_index, target in (
        # the middle focus plane: objects in front of and behind it are blurred
        ("procedural light field", "procedural", 0.5, PAIR_FOCUS // 2, "exact all-in-focus centre view"),
        # the plants span a shallow range: the widest aperture, the most blurred plane
        ("Lytro plants", "plants", 1.0, None, "centre view (all in focus)"),
    ):
        p = _pick(demo.pairs[name], aperture, focus_index)
        label = f"{tag}: aperture {p.info['aperture']:.2f}, focus {p.info['focus']:+.2f}"
        case = DeblurCase(name=tag, label=label, blurred=p.blurred, sharp=p.sharp, target=target)
        before = psnr_ssim(case.blurred, case.sharp)
        case.scores = {"psnr_before": before[0], "ssim_before": before[1],
                       "aperture": p.info["aperture"], "focus": p.info["focus"]}
        demo.report["outputs"][f"{tag}_blurry"] = str(save_image(demo.out / f"{tag}_blurry.png", case.blurred))
        demo.report["outputs"][f"{tag}_sharp"] = str(save_image(demo.out / f"{tag}_sharp.png", case.sharp))
        cases.append(case)
    return cases


def _focal_panels(planes: list) -> list:
    *inside, (d_out, img_out) = planes
    panels = [(f"refocused d={d:+.2f} px/view", img) for d, img in inside]
    panels[0] = (panels[0][0] + " (range start)", panels[0][1])
    panels[-1] = (panels[-1][0] + " (range end)", panels[-1][1])
    return [*panels, (f"d={d_out:+.2f}: outside the range", img_out)]


def _lightfield_figure(demo: Demo) -> Path:
    plants, proc = demo.plants, demo.procedural
    V, U = plants.grid
    row = plants.view_shape[0] // 2
    d = proc.disparity
    assert d is not None  # a procedural light field knows its true disparity
    rows = [
        ("Lytro plants (real)", [
            ("centre view", plants.center_view()),
            ("view (0, 0), top-left", plants.view(0, 0)),
            (f"view ({V - 1}, {U - 1}), bottom-right", plants.view(V - 1, U - 1)),
            (f"EPI u-x at y={row} (slopes = disparity)", _epi(plants, row), {"aspect": "auto"}),
        ]),
        ("plants: focal range", _focal_panels(demo.focal["Lytro plants"])),
        ("procedural (exact)", [
            ("centre view = all-in-focus truth", proc.center_view()),
            (f"true disparity {np.nanmin(d):+.2f} .. {np.nanmax(d):+.2f}", d,
             {"cmap": "turbo", "colorbar": True}),
            (f"EPI u-x at y={proc.view_shape[0] // 2}", _epi(proc, proc.view_shape[0] // 2), {"aspect": "auto"}),
            ("view (0, 0), top-left", proc.view(0, 0)),
        ]),
        ("procedural: focal range", _focal_panels(demo.focal["procedural light field"])),
    ]
    pair_panels: list[tuple] = []
    for name, pairs in demo.pairs.items():
        tag = "plants" if name == "Lytro plants" else "procedural"
        for p in sorted(pairs, key=lambda p: p.info["psnr"])[:2]:
            i = p.info
            label = f"{tag} pair: aperture {i['aperture']:.1f}, focus {i['focus']:+.2f}, {i['psnr']:.1f} dB"
            pair_panels.append((label, p.blurred))
    rows.append(("training pairs (blurred)", pair_panels))
    return _figure(rows, demo.out / "demo_lightfield.png",
                   "Light fields: views, parallax, focal range and (blurred, sharp) pairs")


def _detail_crop(gain: np.ndarray, size: int) -> tuple[slice, slice]:
    """The ``size``-pixel square where deblurring lowers the error most (the differences are a few pixels
    wide: at the figure's scale they need magnifying to be seen)."""
    from scipy.ndimage import uniform_filter

    size = min(size, *gain.shape)
    h = size // 2
    score = uniform_filter(gain.astype(np.float64), size=size, mode="constant")[h: gain.shape[0] - size + h + 1,
                                                                                h: gain.shape[1] - size + h + 1]
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    return slice(y, y + size), slice(x, x + size)


def _detail_row(case, gain: np.ndarray, size: int = 64):
    ys, xs = _detail_crop(gain, size)
    where = f"rows {ys.start}-{ys.stop - 1}, columns {xs.start}-{xs.stop - 1}"
    panels = [(f"blurry input: the {size}x{size} detail where deblurring\nlowers the error most ({where})",
               case.blurred[ys, xs]),
              ("deblurred, same detail", case.restored[ys, xs]),
              ("sharp target, same detail", case.sharp[ys, xs])]
    return (case.label.split(":")[0] + "\ndetail, magnified", panels)


def _deblur_figure(demo: Demo) -> Path:
    rows = []
    for case in demo.cases:
        s = case.scores
        blurry: tuple = (f"blurry input: {s['psnr_before']:.2f} dB, SSIM {s['ssim_before']:.3f}", case.blurred)
        sharp = (f"sharp target: {case.target}", case.sharp)
        label = case.label.replace(": ", "\n", 1)
        if case.restored is None:
            rows.append((label, [blurry, sharp]))
            continue
        gain = np.abs(case.blurred - case.sharp).mean(-1) - np.abs(case.restored - case.sharp).mean(-1)
        lim = float(np.percentile(np.abs(gain), 99)) or 1e-3
        deblurred = (f"deblurred: {s['psnr_after']:.2f} dB, SSIM {s['ssim_after']:.3f}", case.restored)
        error = ("error reduction (red: better)", gain, {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim})
        rows += [(label, [blurry, deblurred, sharp, error]), _detail_row(case, gain)]
    model = demo.report.get("deblur", {}).get("model")
    title = ("Deblurring refocused (blurred) images: PSNR / SSIM against the sharp target"
             if model else "Blurred pairs and their targets\n(no model installed: deblurring skipped;\n"
                           "lfdeblur demo --model CKPT)")
    return _figure(rows, demo.out / "demo_deblur.png", title)


# ------------------------------------------------------------------ entry points
def run_demo(out: str | Path = "lfdeblur-demo", gui: bool = False, model=None) -> Demo:
    """Run the demo and write its figures (``demo_lightfield.png``, ``demo_deblur.png``), images, pair folder
    (``pairs/``) and ``summary.json`` to ``out``.

    ``model``: None (the shipped default, skipped with a message when it is not installed), a checkpoint path or
    an ``nn.Module``.  ``gui=True`` opens napari with the results afterwards.  Returns a :class:`Demo` whose
    ``report`` is what ``summary.json`` holds.
    """
    from .lightfield.synthetic import synthetic_lightfield
    from .sample_data import sample_lightfield

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    plants = sample_lightfield("lytro_plants").compute()
    proc = synthetic_lightfield(**PROCEDURAL)
    proc.metadata["name"] = "procedural light field"
    demo = Demo(out=out, plants=plants, procedural=proc)
    outputs = demo.report["outputs"]

    _print_summary("Shipped real light field (Lytro plants, CC BY 4.0):", plants.summary())
    demo.report["lightfield"] = plants.summary()
    _print_summary(f"Procedural light field (seed {PROCEDURAL['seed']}; exact ground truth):",
                   {k: v for k, v in proc.summary().items() if k != "source"})
    demo.report["procedural"] = {**proc.summary(), "seed": PROCEDURAL["seed"]}
    outputs["plants_centre"] = str(save_image(out / "plants_centre.png", plants.center_view()))
    outputs["procedural_centre"] = str(save_image(out / "procedural_centre.png", proc.center_view()))
    assert proc.disparity is not None  # a procedural light field knows its true disparity
    with atomic_path(out / "procedural_disparity.npy") as tmp:
        np.save(tmp, proc.disparity)
    outputs["procedural_disparity"] = str(out / "procedural_disparity.npy")

    print("Focal range (refocused with the full aperture):")
    _focal_range(demo, "Lytro plants", plants, "plants")
    _focal_range(demo, "procedural light field", proc, "procedural")

    print("Training pairs (blurred: refocused with a wide aperture; sharp: the centre view):")
    _make_pairs(demo, "Lytro plants", plants, "plants")
    manifest = _make_pairs(demo, "procedural light field", proc, "procedural")
    outputs["pairs"] = str(manifest.parent)
    demo.report["pairs"] = {name: len(p) for name, p in demo.pairs.items()}
    print(f"  written to {manifest.parent}/ (blur/, sharp/, {manifest.name})")

    demo.cases = _deblur_cases(demo)
    _deblur_step(demo, model)

    outputs["figure_lightfield"] = str(_lightfield_figure(demo))
    outputs["figure_deblur"] = str(_deblur_figure(demo))
    demo.report["seconds"] = round(time.perf_counter() - t0, 2)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(demo.report, indent=2, default=str))
    print(f"Wrote {outputs['figure_lightfield']}, {outputs['figure_deblur']}, the images, the pair folder and "
          f"summary.json to {out}/ in {demo.report['seconds']} s")

    if gui:
        from ._napari._demo_gui import open_gui  # napari and Qt live in _napari/

        open_gui(demo)
    return demo
