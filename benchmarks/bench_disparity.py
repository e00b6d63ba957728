"""Disparity from the views, scored on the HCI "antinous" ground truth.

Run from the project root::

    python benchmarks/bench_disparity.py [--device cpu|cuda|auto]

Scores as in the HCI 4D light field benchmark, over the full 512x512 image
minus a 15 px border: MSE x 100 and BadPix(t) = percentage of pixels with
|error| > t, for t = 0.07 (the benchmark's headline), 0.03 and 0.01.  The
range comes from ``estimate_disparity_range`` (no ground truth is used by the
estimate).  A constant prediction (the gt median) is printed for scale.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import napari_lfdeblur as lfd
from napari_lfdeblur.lightfield.core import LightField

HCI = Path(os.environ.get("LFDEBLUR_SHARED_DATA", ROOT.parent / "shared" / "data")) / "lightfields" / "hci_antinous"
BORDER = 15


def read_pfm(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        f.readline()
        w, h = (int(v) for v in f.readline().split())
        scale = float(f.readline())
        a = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4").reshape(h, w)
    return np.ascontiguousarray(a[::-1], dtype=np.float32)


def load_hci() -> LightField:
    try:
        from napari_lfdeblur import read_lightfield

        return read_lightfield(str(HCI)).compute()
    except ImportError:
        from PIL import Image

        data = np.empty((9, 9, 512, 512, 3), np.float32)
        for r in range(9):
            for c in range(9):
                data[r, c] = np.asarray(Image.open(HCI / f"input_Cam{9 * r + c:03d}.png").convert("RGB"), np.float32) / 255
        return LightField(data, disparity=read_pfm(HCI / "gt_disp_lowres.pfm"), metadata={"source": str(HCI)})


def scores(d: np.ndarray, gt: np.ndarray) -> dict:
    e = (d - gt)[BORDER:-BORDER, BORDER:-BORDER]
    out = {"MSE*100": 100 * float(np.mean(e**2))}
    for t in (0.07, 0.03, 0.01):
        out[f"BadPix{t}"] = 100 * float(np.mean(np.abs(e) > t))
    return out


def fmt(s: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in s.items())


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    if not HCI.is_dir():
        sys.exit(f"HCI data not found at {HCI}")
    lf = load_hci()
    gt = lf.disparity
    views_only = LightField(lf.data, metadata={"source": str(HCI)})  # no gt, no metadata range
    print(f"{lf}; gt disparity {gt.min():.2f} .. {gt.max():.2f}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device or 'cpu'}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    t = time.perf_counter()
    lo, hi = lfd.estimate_disparity_range(views_only, device=args.device)
    t_range = time.perf_counter() - t
    g1, g99 = np.percentile(gt, [1, 99])
    print(f"estimate_disparity_range: ({lo:.2f}, {hi:.2f}) in {t_range:.2f} s "
          f"(gt 1-99 %: {g1:.2f} .. {g99:.2f}, min-max {gt.min():.2f} .. {gt.max():.2f})")

    t = time.perf_counter()
    d = lfd.estimate_disparity(views_only, disparity_range=(lo, hi), device=args.device)
    t_est = time.perf_counter() - t
    print(f"estimate_disparity: {t_est:.2f} s (plus {t_range:.2f} s for the range), border {BORDER} px excluded")
    print(f"  estimate:        {fmt(scores(d, gt))}")
    print(f"  constant median: {fmt(scores(np.full_like(gt, np.median(gt)), gt))}")
    d0 = lfd.estimate_disparity(views_only, disparity_range=(lo, hi), smoothness=0.0, device=args.device)
    print(f"  no SGM smoothing: {fmt(scores(d0, gt))}")


if __name__ == "__main__":
    main()
