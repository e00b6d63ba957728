"""Refocus speed: the vectorised torch refocus against a naive per-view scipy loop.

Run from the project root::

    python benchmarks/bench_refocus.py [--device cpu|cuda|auto] [--repeats 10]

Uses the HCI "antinous" light field (9x9 views of 512x512x3) from
``../shared/data/lightfields/hci_antinous`` when present, else a procedural
light field of the same size.  Prints seconds per refocus for both methods in
the same process, their ratio, and the largest difference between their
results (both are bilinear with clamped borders, so they agree to float
rounding).  The target is under 0.3 s per refocus on a 2-core CPU (a napari
focus slider).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import napari_lfdeblur as lfd
from napari_lfdeblur.lightfield.core import LightField

HCI = Path(os.environ.get("LFDEBLUR_SHARED_DATA", ROOT.parent / "shared" / "data")) / "lightfields" / "hci_antinous"


def load_lightfield() -> tuple[LightField, str]:
    if HCI.is_dir():
        try:
            from napari_lfdeblur import read_lightfield

            return read_lightfield(str(HCI)).compute(), "HCI antinous (read_lightfield)"
        except ImportError:
            from PIL import Image

            data = np.empty((9, 9, 512, 512, 3), np.float32)
            for r in range(9):
                for c in range(9):
                    img = Image.open(HCI / f"input_Cam{9 * r + c:03d}.png").convert("RGB")
                    data[r, c] = np.asarray(img, np.float32) / 255
            return LightField(data, metadata={"source": str(HCI)}), "HCI antinous (PNG loader)"
    return lfd.synthetic_lightfield(0, views=9, size=512), "synthetic 9x9x512x512 (HCI data not found)"


def naive_refocus(lf: LightField, d: float) -> np.ndarray:
    """The baseline: scipy.ndimage.shift of every view, then the mean."""
    from scipy import ndimage as ndi

    vc, uc = lf.center
    acc = np.zeros(lf.data.shape[2:], np.float64)
    for v in range(lf.grid[0]):
        for u in range(lf.grid[1]):
            acc += ndi.shift(lf.data[v, u], (d * (v - vc), d * (u - uc), 0), order=1, mode="nearest")
    return (acc / (lf.grid[0] * lf.grid[1])).astype(np.float32)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--naive-repeats", type=int, default=2)
    args = ap.parse_args()

    t0 = time.perf_counter()
    lf, what = load_lightfield()
    print(f"light field: {what}: {lf}  (loaded in {time.perf_counter() - t0:.1f} s)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device or 'cpu'}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    disparities = np.linspace(-3.0, 2.5, args.repeats)
    lfd.refocus(lf, 0.3, device=args.device)  # warm-up (and upload, for a GPU)
    times = []
    for d in disparities:
        t = time.perf_counter()
        lfd.refocus(lf, float(d), device=args.device)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"refocus (aperture 1, all 81 views): median {med * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms, "
          f"max {max(times) * 1e3:.1f} ms over {len(times)} disparities")

    t = time.perf_counter()
    lfd.refocus(lf, 0.7, aperture=0.5, device=args.device)
    print(f"refocus (aperture 0.5): {(time.perf_counter() - t) * 1e3:.1f} ms")

    t = time.perf_counter()
    st = lfd.focal_stack(lf, disparities, device=args.device)
    per = (time.perf_counter() - t) / len(disparities)
    print(f"focal_stack of {len(disparities)} slices: {per * 1e3:.1f} ms per slice, result {st.shape} {st.dtype}")

    t = time.perf_counter()
    gt_map = lf.disparity if lf.disparity is not None else np.zeros(lf.view_shape, np.float32)
    lfd.refocus(lf, gt_map, device=args.device)
    print(f"refocus with a per-pixel disparity map (grid_sample path): {(time.perf_counter() - t) * 1e3:.0f} ms")

    naive_times, diffs = [], []
    for d in disparities[: args.naive_repeats]:
        t = time.perf_counter()
        ref = naive_refocus(lf, float(d))
        naive_times.append(time.perf_counter() - t)
        diffs.append(float(np.abs(ref - lfd.refocus(lf, float(d), device=args.device)).max()))
    nmed = statistics.median(naive_times)
    print(f"naive scipy.ndimage.shift loop: median {nmed * 1e3:.0f} ms over {len(naive_times)} disparities")
    print(f"speed-up: {nmed / med:.0f}x;  largest |difference| between the two: {max(diffs):.2e}")
    print(f"target < 300 ms per refocus: {'met' if med < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
