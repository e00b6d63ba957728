"""Benchmark: opening a light-field folder lazily vs decoding every view.

Usage::

    python benchmarks/bench_open_lightfield.py [PATH] [--repeat 3]

PATH defaults to the HCI "antinous" scene in the shared real-data folder
(81 PNG views of 512 x 512 RGB).  Three cases are measured:

- ``open lazy``:      ``read_lightfield(path)``: headers only, a dask array;
- ``open + 1 view``:  the same, then decode the centre view (what napari does
                      to draw the first slice);
- ``decode all``:     ``read_lightfield(path, lazy=False)``: every view
                      decoded into one float32 numpy array.

Method (honest about what is measured): every run is a fresh Python
subprocess, so nothing is cached in memory between runs (the OS file cache is
warm after the first run; a warm-up run is discarded).  In the child, the
readers, dask, numpy and Pillow are imported first; then the resident set
size (VmRSS) is read, the kernel's peak-RSS counter is reset (writing ``5`` to
``/proc/self/clear_refs``, Linux), the case runs, and the peak (VmHWM) is read.
"Peak memory" is VmHWM minus the VmRSS before the case: the growth of the
process's peak physical memory, including freed temporaries, allocator slack
and dask's thread pool.  Wall time is ``time.perf_counter`` around the case.
Medians over ``--repeat`` runs are printed, and the ratios decode-all / lazy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _memory import peak_kib, reset_peak_rss, status_kib  # benchmarks/_memory.py (this folder is on sys.path)

HERE = Path(__file__).resolve().parent
DEFAULT = (
    Path(os.environ.get("LFDEBLUR_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    / "lightfields"
    / "hci_antinous"
)
CASES = ("open lazy", "open + 1 view", "decode all")


def _child(case: str, path: str) -> None:
    # import everything first so that only the case itself is measured
    import dask.array  # noqa: F401
    import numpy as np
    from PIL import Image

    from napari_lfdeblur.lightfield.readers import read_lightfield

    Image.init()
    rss0 = status_kib("VmRSS")
    reset = reset_peak_rss()
    t0 = time.perf_counter()
    if case == "open lazy":
        lf = read_lightfield(path)
    elif case == "open + 1 view":
        lf = read_lightfield(path)
        v, u = lf.center_index()
        np.asarray(lf.data[v, u].compute())
    else:
        lf = read_lightfield(path, lazy=False)
    dt = time.perf_counter() - t0
    hwm = peak_kib(reset)
    out = {
        "wall_s": dt,
        "peak_growth_mib": (hwm - rss0) / 1024 if (hwm and rss0) else float("nan"),
        "peak_reset": reset,
        "shape": list(lf.data.shape),
        "array_mib": int(np.prod(lf.data.shape)) * 4 / 2**20,
    }
    print(json.dumps(out))


def _run(case: str, path: str) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", case, path], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"child run {case!r} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.path)
        return 0
    if not Path(args.path).exists():
        print(f"no data at {args.path}; pass a light-field folder")
        return 1
    print(f"light field: {args.path}")
    _run("decode all", args.path)  # warm the OS file cache; discarded
    res = {}
    for case in CASES:
        runs = [_run(case, args.path) for _ in range(args.repeat)]
        res[case] = {
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "peak_mib": statistics.median(r["peak_growth_mib"] for r in runs),
            "runs": runs,
        }
    first = res[CASES[0]]["runs"][0]
    print(f"shape {tuple(first['shape'])}, float32 array {first['array_mib']:.0f} MiB when decoded")
    print(f"peak-RSS counter reset per run: {first['peak_reset']}; medians of {args.repeat} fresh processes")
    print(f"{'case':<16}{'wall time':>12}{'peak RSS growth':>18}")
    for case in CASES:
        r = res[case]
        print(f"{case:<16}{r['wall_s'] * 1000:>10.1f} ms{r['peak_mib']:>14.1f} MiB")
    lazy, full = res["open lazy"], res["decode all"]
    print(
        f"decode all / open lazy: {full['wall_s'] / lazy['wall_s']:.0f}x the time, "
        f"{full['peak_mib'] / max(lazy['peak_mib'], 0.1):.0f}x the peak memory "
        f"(lazy peak floored at 0.1 MiB for the ratio)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
