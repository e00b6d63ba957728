"""Is the viewer responsive while a huge lazy deblurred layer fills in?  Pan a 20000 x 20000 layer and time the GUI.

A real napari viewer (run under ``xvfb-run -a`` on a machine without a display)
shows a 20000 x 20000 RGB uint8 dask image (procedural texture, made chunk by
chunk, never in memory as a whole).  The Deblur widget adds its lazy
multiscale result (DRBNet lite8 with random weights: speed does not depend on
them), and the camera then jumps to ``--pans`` places at full resolution, one
after another, waiting for napari to draw each.

While that happens a 10 ms ``QTimer`` records when the Qt event loop gets to
run.  The longest gap between two ticks is the longest freeze a user sees
(mouse, sliders and buttons dead); ``fill s`` is how long the visible tiles
take to appear after each pan.  Two modes, each in a fresh process:

``sync``
    napari's default: the visible chunks are computed on the GUI thread.
``async``
    the widget's *background rendering* box (napari's experimental
    ``async_`` setting): chunks are computed in napari's slicing thread.

The ratio sync/async of the longest freeze is the figure; fill times should
be about equal (the same work, elsewhere).  Example::

    xvfb-run -a python benchmarks/bench_viewer_pan.py --pans 3
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time

from _memory import peak_kib  # benchmarks/_memory.py (this folder is on sys.path)
from _viewer import wait_until  # benchmarks/_viewer.py

SIDE = 20000


def _texture(block_info=None):
    """A 1024-pixel chunk of a procedural photo-like texture (stripes, blobs and noise)."""
    import numpy as np

    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc[0], loc[1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rng = np.random.default_rng(y0 * 100003 + x0)
    base = 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 0.1 * rng.standard_normal(yy.shape)
    rgb = np.stack([base, np.roll(base, 3, axis=0), np.roll(base, 5, axis=1)], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _peak_gb() -> float:
    return peak_kib(reset=False) / 1e6  # the process's lifetime peak


def run_mode(mode: str, pans: int, timeout: float) -> dict:
    import dask.array as da
    import napari
    import numpy as np
    import torch
    from napari.settings import get_settings
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_lfdeblur._napari._widget_deblur import DeblurWidget
    from napari_lfdeblur.network.drbnet import DRBNet

    torch.set_num_threads(1)
    get_settings().experimental.async_ = mode == "async"
    torch.manual_seed(0)
    net = DRBNet(base=8).eval()

    image = da.map_blocks(_texture, chunks=((1024,) * 19 + (SIDE - 19 * 1024,),) * 2 + ((3,),), dtype=np.uint8)
    # as a user would hold an image this size: a lazy pyramid (a single 20000^2 level makes napari
    # itself load all 1.2 GB, 6 GB of RAM, when it draws the zoomed-out view)
    pyramid = [image]
    while max(pyramid[-1].shape[:2]) > 1024:
        pyramid.append(da.coarsen(np.mean, pyramid[-1], {0: 2, 1: 2, 2: 1}, trim_excess=True).astype(np.uint8))
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    src = viewer.add_image(pyramid, name="huge", rgb=True, contrast_limits=(0, 255), multiscale=True)
    widget = DeblurWidget(viewer)
    widget.layer.value = src
    widget._kwargs = lambda: {"model": net, "device": "cpu", "tile": 512}  # the random lite network

    wait = functools.partial(wait_until, app)

    t0 = time.perf_counter()
    widget.run()  # lazy: the overview level is computed in a worker, then the layer is added
    name = "huge deblurred"
    if not wait(lambda: name in viewer.layers, timeout):
        raise SystemExit(f"the lazy layer did not appear within {timeout} s: {widget.status.value}")
    overview_s = time.perf_counter() - t0
    layer = viewer.layers[name]
    src.visible = False

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    camera = getattr(viewer, "scene", viewer).camera  # napari >= 0.9: viewer.scene.camera
    rng = np.random.default_rng(1)
    fills = []
    for _ in range(pans):
        y, x = rng.uniform(2000, SIDE - 2000, 2)
        ticks.append(time.perf_counter())
        camera.center = (float(y), float(x))
        camera.zoom = 1.0  # full resolution: napari must compute the level-0 tiles in view
        t_pan = time.perf_counter()
        wait(lambda: False, 0.3)  # let napari start slicing
        ok = wait(lambda: bool(getattr(layer, "loaded", True)), timeout)
        fills.append(time.perf_counter() - t_pan if ok else float("nan"))
        wait(lambda: False, 0.2)
    timer.stop()
    gaps = np.diff(np.asarray(ticks)) * 1000
    viewer.close()
    return {
        "mode": mode, "overview_s": round(overview_s, 2), "levels": len(layer.data),
        "max_freeze_ms": round(float(gaps.max()), 1), "p95_gap_ms": round(float(np.percentile(gaps, 95)), 1),
        "ticks": len(ticks), "fill_s": [round(f, 2) for f in fills], "peak_rss_gb": round(_peak_gb(), 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pans", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one pan's tiles")
    ap.add_argument("--modes", nargs="+", default=["sync", "async"], choices=["sync", "async"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_mode(args.child, args.pans, args.timeout)), flush=True)
        return 0
    if not os.environ.get("DISPLAY"):
        print("needs a display: run under xvfb-run -a", file=sys.stderr)
        return 2
    print(f"== panning a {SIDE}x{SIDE} lazy deblurred layer (lite8, random weights), {args.pans} pans, "
          "a fresh process per mode")
    print(f"{'mode':6s} {'overview s':>10s} {'levels':>6s} {'longest freeze ms':>17s} {'p95 gap ms':>10s} {'peak GB':>7s}  fill s per pan")
    res = {}
    for mode in args.modes:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--pans", str(args.pans),
                              "--timeout", str(args.timeout)], capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            print(f"{mode}: failed\n{out.stderr[-2000:]}")
            continue
        r = res[mode] = json.loads(lines[-1])
        print(f"{mode:6s} {r['overview_s']:10.2f} {r['levels']:6d} {r['max_freeze_ms']:17.1f} {r['p95_gap_ms']:10.1f} {r['peak_rss_gb']:7.2f}  "
              f"{r['fill_s']}")
    if "sync" in res and "async" in res:
        ratio = res["sync"]["max_freeze_ms"] / max(res["async"]["max_freeze_ms"], 1e-9)
        print(f"longest freeze, sync / async: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
