"""How soon does a huge lazy deblurred layer show something?  A real viewer, the Deblur dock, the shipped model.

A napari viewer of 1366 x 768 (run under ``xvfb-run -a`` without a display)
shows a 20000 x 20000 RGB uint8 procedural image, made chunk by chunk and
never whole in memory.  ``--source``:

``pyramid`` (default)
    a lazy multiscale image whose every level is made directly at its own
    scale, as an OME-Zarr pyramid on disk is read: a coarse level is cheap.
``coarsen``
    levels 1.. are 2x2 means of the level above (``dask.array.coarsen``), as
    in ``bench_viewer_pan.py``: any coarse pixel costs reading the full
    resolution under it.
``single``
    one 20000 x 20000 level (added hidden: napari itself would load all of it
    to draw it zoomed out).
``file``
    the same picture as a 20000 x 20000 RGB TIFF on disk (``--file``; written
    once, 1.2 GB), opened through File > Open (``viewer.open(path)``, no
    plugin named): napari's own reader holds it in memory as numpy, the
    single-scale image a user has.  ``open s`` is how long that took.

The Deblur dock is opened through the Plugins menu door
(``add_plugin_dock_widget``), lazy mode and background rendering on, the
shipped default model, and *Deblur layer* is pressed.  Printed:

- ``first s``: seconds from the click until napari has drawn the whole-image
  view of the result (the level it picks for the canvas, no slice pending);
- ``fill s``: after zooming in on a 1024-pixel-high region at full
  resolution (napari widens it to whole chunks), seconds until napari has drawn it; ``MP/s`` the visible
  pixels over that time, next to the same process's baselines: ``deblur`` of a
  numpy crop of the same size (the same model and settings) and the network
  alone on that crop in one call;
- network megapixels behind each (halo and chunk edges included);
- ``preview``: on the same zoomed-in view, seconds from the *Preview visible
  region* click until its layer is there (one network call on what is on
  screen, at about the screen's resolution).

Screenshots of both views go to ``--shots`` (look at them: the picture must be
there).  Example::

    xvfb-run -a python benchmarks/bench_viewer_first_picture.py --shots /tmp/shots
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

from _viewer import wait_until  # benchmarks/_viewer.py (this folder is on sys.path)

SIDE = 20000
CHUNK = 1024
WINDOW = (1366, 768)


def _texture(level: int):
    """A chunk function for level ``level`` (2**level downsampled) of a photo-like procedural texture."""

    def block(block_info=None):
        import numpy as np

        (y0, y1), (x0, x1) = block_info[None]["array-location"][:2]
        f = 2.0 ** level
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) * f  # full-resolution coordinates
        rng = np.random.default_rng((level, y0, x0))
        base = (0.5 + 0.2 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 0.2 * np.sin(xx / 1500.0 + yy / 2300.0)
                + 0.1 / f * rng.standard_normal(yy.shape, dtype=np.float32))
        rgb = np.stack([base, 0.8 * base + 0.1 * np.cos(yy / 3100.0), 1.0 - 0.6 * base], axis=-1)
        return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)

    return block


def make_source(kind: str):
    """The input: a list of lazy levels (finest first) or one lazy array."""
    import dask.array as da
    import numpy as np

    def level(k: int):
        n = -(-SIDE // 2 ** k)
        chunks = tuple(tuple(min(CHUNK, n - s) for s in range(0, n, CHUNK)) for _ in range(2)) + ((3,),)
        return da.map_blocks(_texture(k), chunks=chunks, dtype=np.uint8)

    if kind == "single":
        return level(0)
    levels = [level(0)]
    while max(levels[-1].shape[:2]) > CHUNK:
        if kind == "pyramid":
            levels.append(level(len(levels)))
        else:
            levels.append(da.coarsen(np.mean, levels[-1], {0: 2, 1: 2, 2: 1}, trim_excess=True).astype(np.uint8))
    return levels


def write_file(path: str) -> None:
    """The ``single`` picture as an uncompressed tiled TIFF at ``path`` (written atomically, once)."""
    import numpy as np
    import tifffile

    if os.path.exists(path):
        return
    level = make_source("single")
    tmp = path + ".part"
    tiles = ((level.blocks[i, j].compute() for j in range(level.numblocks[1])) for i in range(level.numblocks[0]))

    def chunks():  # 512-px TIFF tiles from the 1024-px chunks, row by row
        for row in tiles:
            strip = np.concatenate(list(row), axis=1)
            for y in range(0, strip.shape[0], 512):
                for x in range(0, strip.shape[1], 512):
                    tile = np.zeros((512, 512, 3), np.uint8)
                    part = strip[y:y + 512, x:x + 512]
                    tile[:part.shape[0], :part.shape[1]] = part
                    yield tile

    tifffile.imwrite(tmp, chunks(), shape=level.shape, dtype=np.uint8, tile=(512, 512), photometric="rgb")
    os.replace(tmp, path)


def run(kind: str, shots: str | None, timeout: float, path: str | None = None) -> dict:
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_lfdeblur.inference import runtime
    from napari_lfdeblur.inference.deblur import deblur
    from napari_lfdeblur.inference.runtime import resolve_runtime

    pixels = [0]  # network pixels: every call of the network (PyTorch; the viewer's results never run OpenVINO)
    real_torch = runtime.run_torch

    def counted(tiles, how):
        pixels[0] += int(np.prod(tiles.shape[:-1]))
        return real_torch(tiles, how)

    runtime.run_torch = counted

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW)
    app = QApplication.instance()
    opened = {}
    if kind == "file":  # File > Open: napari picks the reader (its own, for a plain TIFF)
        t = time.perf_counter()
        src = viewer.open(path)[0]
        opened["open_s"] = round(time.perf_counter() - t, 2)
        src.name = "huge"
        source, multiscale = src.data, False
        assert isinstance(source, np.ndarray) and source.shape == (SIDE, SIDE, 3), (type(source), source.shape)
    else:
        source = make_source(kind)
        multiscale = isinstance(source, list)
        src = viewer.add_image(source, name="huge", rgb=True, contrast_limits=(0, 255), multiscale=multiscale,
                               visible=multiscale)
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Deblur")
    widget.layer.value = src
    widget.lazy.value = True
    widget.background.value = True
    kwargs = widget._kwargs()
    assert kwargs["model"] == "default", kwargs

    wait = functools.partial(wait_until, app)

    def settled(layer, quiet=1.0):
        """Wait until ``layer`` is loaded and stays so for ``quiet`` s; the time it last became loaded."""
        t_loaded = None
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            app.processEvents()
            now = time.perf_counter()
            if layer.loaded:
                t_loaded = t_loaded or now
                if now - t_loaded >= quiet:
                    return t_loaded
            else:
                t_loaded = None
            time.sleep(0.005)
        return None

    wait(lambda: False, 1.0)  # the window settles at its size
    name = "huge deblurred"
    pixels[0] = 0
    t0 = time.perf_counter()
    widget.run()
    if not wait(lambda: name in viewer.layers, timeout):
        raise SystemExit(f"no result layer within {timeout} s: {widget.status.value}")
    added_s = time.perf_counter() - t0
    layer = viewer.layers[name]
    src.visible = False
    t_first = settled(layer)
    if t_first is None:
        raise SystemExit(f"the whole-image view was not drawn within {timeout} s")
    first = {"first_s": round(t_first - t0, 2), "added_s": round(added_s, 2), "level": int(layer.data_level),
             "level_shape": list(layer.data[layer.data_level].shape[:2]),
             "level_chunks": [max(c) for c in layer.data[layer.data_level].chunks[:2]],
             "network_mp": round(pixels[0] / 1e6, 2), "canvas": list(viewer.canvas.size)}
    if shots:
        os.makedirs(shots, exist_ok=True)
        viewer.screenshot(os.path.join(shots, f"{kind}_1_overview.png"), canvas_only=False)

    # zoom in on a 1024-pixel-high region at full resolution, on no chunk grid in particular (as a user's view)
    camera = getattr(viewer, "scene", viewer).camera  # napari >= 0.9: viewer.scene.camera
    h, w = viewer.canvas.size
    y0, x0 = 9300, 7300
    camera.zoom = h / CHUNK
    camera.center = (y0 + CHUNK / 2, x0 + w / camera.zoom / 2)
    pixels[0] = 0
    t_pan = time.perf_counter()
    wait(lambda: False, 0.3)  # napari slices after the camera events
    t_fill = settled(layer)
    fill_s = (t_fill - t_pan) if t_fill is not None else float("nan")
    corners = np.asarray(layer.corner_pixels)[:, :2]
    visible = (h / camera.zoom) * (w / camera.zoom)
    fill = {"fill_s": round(fill_s, 2), "fill_level": int(layer.data_level),
            "visible_mp": round(visible / 1e6, 2), "computed_region": corners.tolist(),
            "fill_network_mp": round(pixels[0] / 1e6, 2), "fill_mp_s": round(visible / 1e6 / fill_s, 3)}
    if shots:
        viewer.screenshot(os.path.join(shots, f"{kind}_2_zoomed.png"), canvas_only=False)

    # baseline in this process: deblur of a numpy crop the size of the visible region, the dock's settings
    crop_h, crop_w = CHUNK, int(round(w / camera.zoom)) // 8 * 8
    crop = np.asarray((source[0] if multiscale else source)[y0:y0 + crop_h, x0:x0 + crop_w])
    t = time.perf_counter()
    deblur(crop, **kwargs)
    base_s = time.perf_counter() - t
    fill["baseline_s"] = round(base_s, 2)
    fill["baseline_mp_s"] = round(crop_h * crop_w / 1e6 / base_s, 3)
    # and the network alone on that crop, one call: what no tiling, halo or viewer adds
    fn = resolve_runtime(kwargs["model"], kwargs["device"], kwargs["dtype"])
    unit = crop.astype(np.float32)[None] / 255
    fn(unit[:, :64, :64])  # a backend may compile per shape: not part of the figure
    fn(unit)
    t = time.perf_counter()
    fn(unit)
    fill["network_mp_s"] = round(crop_h * crop_w / 1e6 / (time.perf_counter() - t), 3)
    fill["backend"] = getattr(fn, "backend", "torch")

    # Preview visible region on the same zoomed-in view: one network call on what is on screen
    preview_name = "huge deblurred (preview)"
    pixels[0] = 0
    t = time.perf_counter()
    widget.preview()
    if wait(lambda: preview_name in viewer.layers, timeout):
        prev = viewer.layers[preview_name]
        fill["preview_s"] = round(time.perf_counter() - t, 2)
        fill["preview_shape"] = list(prev.data.shape[:2])
        fill["preview_scale"] = float(prev.scale[0])
        fill["preview_network_mp"] = round(pixels[0] / 1e6, 2)
        if shots:
            viewer.layers[name].visible = False
            wait(lambda: False, 0.5)
            viewer.screenshot(os.path.join(shots, f"{kind}_3_preview.png"), canvas_only=False)
    status = widget.status.value
    viewer.close()
    return {"source": kind, **opened, **first, **fill, "status": status}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", nargs="+", default=["pyramid"], choices=["pyramid", "coarsen", "single", "file"])
    ap.add_argument("--file", default=os.path.join(tempfile.gettempdir(), f"lfdeblur-bench-{SIDE}.tif"),
                    help="the TIFF for --source file (written if missing, 1.2 GB)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for one picture")
    ap.add_argument("--shots", help="folder for screenshots")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run(args.child, args.shots, args.timeout, args.file)), flush=True)
        return 0
    if not os.environ.get("DISPLAY"):
        print("needs a display: run under xvfb-run -a", file=sys.stderr)
        return 2
    print(f"== first picture of a {SIDE}x{SIDE} lazy deblurred layer, window {WINDOW[0]}x{WINDOW[1]}, "
          "shipped default model, a fresh process per source")
    for kind in args.source:
        if kind == "file" and not os.path.exists(args.file):
            print(f"writing {args.file} ...", flush=True)
            write_file(args.file)
        cmd = [sys.executable, __file__, "--child", kind, "--timeout", str(args.timeout), "--file", args.file]
        if args.shots:
            cmd += ["--shots", args.shots]
        out = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            print(f"{kind}: failed\n{out.stderr[-3000:]}")
            continue
        r = json.loads(lines[-1])
        if "open_s" in r:
            print(f"{kind}: File > Open took {r['open_s']} s (napari's reader, numpy in memory)")
        print(f"{kind}: first picture {r['first_s']} s (layer added after {r['added_s']} s; level {r['level']} "
              f"{r['level_shape']} in chunks of {r['level_chunks']}; {r['network_mp']} MP through the network)")
        print(f"{kind}: zoomed to full resolution, {r['visible_mp']} MP visible filled in {r['fill_s']} s = "
              f"{r['fill_mp_s']} MP/s (level {r['fill_level']}, {r['fill_network_mp']} MP through the network); "
              f"baselines ({r['backend']}): deblur of a numpy crop that size {r['baseline_mp_s']} MP/s "
              f"({r['baseline_s']} s), the network alone on it {r['network_mp_s']} MP/s")
        if "preview_s" in r:
            print(f"{kind}: Preview visible region on that view: {r['preview_s']} s for {r['preview_shape']} px "
                  f"at 1/{r['preview_scale']:g} ({r['preview_network_mp']} MP through the network)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
