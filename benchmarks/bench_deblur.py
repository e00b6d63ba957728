"""deblur end to end: speed per network width, memory of chunk-by-chunk writing, time to a first tile.

Three parts (random weights: speed does not depend on them):

``speed``
    Megapixels per second of ``deblur`` on an in-memory uint8 RGB image (tile
    512, overlap 48: the defaults, tiling overhead included) for the lite
    networks (DRBNet base 8 and 16) and the full one (base 32), after one
    warm-up call, in float32 and in the default precision (``auto``: bfloat16
    autocast on CPUs that compute it natively), with their ratio.  ``cpu s`` is the CPU time (all threads); on a CPU shared
    with other work, wall times vary more than CPU times.
``memory``
    Peak resident memory (VmHWM) of a fresh subprocess per size that builds
    a lazy dask uint8 RGB image (``da.random``, 1024-pixel chunks, never in
    memory as a whole), deblurs it lazily and writes it chunk by chunk with
    ``save_image_streaming`` to an OME-Zarr (or a tiled TIFF) on disk.
    ``base`` is the resident memory just before computing (Python, torch,
    the network), ``peak-base`` what the computation added.  Flat means
    ``peak-base`` does not grow with the image.  The full network on 64 MP
    takes very long on a CPU, so this part uses lite8 by default;
    ``--memory-net identity`` (no network, the image passes through) checks
    the reading, tiling and writing alone on much bigger images.
``first-tile``
    A 20000 x 20000 RGB lazy layer: time to build the lazy deblurred array
    and to compute one 1024 x 1024 chunk in the middle (what napari needs
    before it shows the first tile).  uint8 needs no intensity statistics;
    uint16 first samples percentiles from 16 of its chunks spread over the image.

Every figure is printed; ratios at the end of each part.  Examples::

    python benchmarks/bench_deblur.py                                  # all parts, ~8 min on 1 free core
    python benchmarks/bench_deblur.py --parts speed --speed-side 1024
    python benchmarks/bench_deblur.py --parts memory --memory-mp 4 16 64 --memory-net lite8 --format tif
    python benchmarks/bench_deblur.py --parts memory --memory-mp 4 64 256 --memory-net identity  # I/O only
    python benchmarks/bench_deblur.py --parts first-tile --first-nets lite8 full

``--threads`` (default 1) sets torch threads and the number of chunks
computed at once: this machine has 2 cores and one is busy with other work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _memory import reset_peak_rss, status_kib  # benchmarks/_memory.py (this folder is on sys.path)

NETS = {"lite8": 8, "lite16": 16, "full": 32, "identity": 0}


def _net(name: str):
    """A DRBNet of the named width with random weights; ``identity``: no network at all (returns its input),
    to measure the reading, tiling and writing around it on images too big for a network on this CPU."""
    import torch

    from napari_lfdeblur.network.drbnet import DRBNet

    if name == "identity":
        class Identity(torch.nn.Module):
            def forward(self, x):
                return x

        return Identity()
    torch.manual_seed(0)
    return DRBNet(base=NETS[name]).eval()


def _mb(kib: int | None) -> float:
    return kib / 1024 if kib is not None else float("nan")


def _side(mp: float) -> int:
    return max(8, int(round(math.sqrt(mp * 1e6) / 8)) * 8)


# ------------------------------------------------------------------ speed
def part_speed(args) -> dict:
    import numpy as np
    import torch

    from napari_lfdeblur.inference.deblur import deblur
    from napari_lfdeblur.inference.runtime import resolve_runtime

    torch.set_num_threads(args.threads)
    side = args.speed_side
    img = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
    mp = side * side / 1e6
    print(f"\n== speed: deblur of a {side}x{side} RGB uint8 image ({mp:.2f} MP), tile 512, "
          f"{args.threads} torch thread(s)")
    print(f"{'net':8s} {'dtype':13s} {'params':>10s} {'wall s':>8s} {'cpu s':>8s} {'MP/s':>8s} {'MP/cpu-s':>9s}")
    res = {}
    for name in args.speed_nets:
        net = _net(name)
        n_params = sum(p.numel() for p in net.parameters())
        for dtype in args.speed_dtypes:
            deblur(img[:256, :256], model=net, device="cpu", dtype=dtype)  # warm-up
            best = None
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                deblur(img, model=net, device="cpu", dtype=dtype)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                if best is None or wall < best[0]:
                    best = (wall, cpu)
            wall, cpu = best
            computed = resolve_runtime(net, "cpu", dtype).precision  # what auto chose
            res[f"{name}/{dtype}"] = {"side": side, "mp": mp, "wall_s": wall, "cpu_s": cpu, "mp_per_s": mp / wall,
                                      "mp_per_cpu_s": mp / cpu, "params": n_params, "computed_in": computed}
            print(f"{name:8s} {dtype + ('=' + computed if dtype == 'auto' else ''):13s} {n_params:10,d} {wall:8.2f} "
                  f"{cpu:8.2f} {mp / wall:8.3f} {mp / cpu:9.3f}")
    base = args.speed_dtypes[0]
    for dtype in args.speed_dtypes[1:]:
        for name in args.speed_nets:
            print(f"  {name} {dtype}: {res[f'{name}/{dtype}']['mp_per_s'] / res[f'{name}/{base}']['mp_per_s']:.2f}x "
                  f"the speed of {base}")
    if "full" in args.speed_nets:
        for name in args.speed_nets:
            if name != "full":
                print(f"  {name} ({base}) is {res[f'{name}/{base}']['mp_per_s'] / res[f'full/{base}']['mp_per_s']:.1f}x "
                      "faster than full")
    return res


# ------------------------------------------------------------------ memory (child process)
def child_memory(mp: float, net_name: str, fmt: str, out_dir: str, threads: int, chunk: int, tile: int) -> dict:
    import dask.array as da
    import torch

    from napari_lfdeblur.inference.deblur import deblur
    from napari_lfdeblur.io import save_image_streaming

    torch.set_num_threads(threads)
    side = _side(mp)
    net = _net(net_name)
    image = da.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype="uint8",
                                              chunks=(chunk, chunk, 3))
    # warm-up on a small image so torch's allocator and kernels are set up before the baseline
    deblur(image[:256, :256].compute(), model=net, device="cpu")
    out = deblur(image, model=net, device="cpu", chunk=chunk, tile=tile or None)
    import gc

    gc.collect()
    reset = reset_peak_rss()
    base = _mb(status_kib("VmRSS"))
    path = os.path.join(out_dir, f"bench_{mp:g}mp." + ("ome.zarr" if fmt == "ome.zarr" else "tif"))
    done = []
    t0 = time.perf_counter()
    save_image_streaming(out, path, progress=lambda d, t: done.append((d, t)), workers=threads)
    wall = time.perf_counter() - t0
    peak = _mb(status_kib("VmHWM"))
    if os.path.isdir(path):
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    else:
        size = os.path.getsize(path)
    return {"mp": side * side / 1e6, "side": side, "net": net_name, "format": fmt, "tile": tile, "wall_s": wall,
            "chunks": done[-1][1] if done else 0, "base_mb": base, "peak_mb": peak,
            "added_mb": peak - base, "hwm_reset": reset, "out_mb": size / 2**20,
            "out_array_mb": side * side * 3 / 2**20}


def part_memory(args) -> dict:
    tiles = f"tile {args.memory_tile}" if args.memory_tile else "one tile per chunk and its halo"
    print(f"\n== memory: lazy {args.memory_net} deblur of a dask uint8 RGB image written chunk by chunk "
          f"to {args.format} ({args.chunk}-px chunks, {tiles}, {args.threads} chunk(s) at a time), fresh process each")
    print(f"{'MP':>6s} {'side':>6s} {'chunks':>6s} {'wall s':>8s} {'MP/s':>6s} {'base MB':>8s} {'peak MB':>8s} "
          f"{'peak-base':>9s} {'image MB':>9s}")
    res = {}
    out_dir = tempfile.mkdtemp(prefix="bench_deblur_", dir=args.tmp)
    try:
        for mp in args.memory_mp:
            cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", str(mp), args.memory_net,
                   args.format, out_dir, str(args.threads), str(args.chunk), str(args.memory_tile or 0)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{mp:6g} failed:\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            res[mp] = r
            print(f"{r['mp']:6.1f} {r['side']:6d} {r['chunks']:6d} {r['wall_s']:8.1f} {r['mp'] / r['wall_s']:6.2f} "
                  f"{r['base_mb']:8.0f} {r['peak_mb']:8.0f} {r['added_mb']:9.0f} {r['out_array_mb']:9.0f}")
            for f in os.listdir(out_dir):  # keep the disk free between sizes
                p = os.path.join(out_dir, f)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    sizes = sorted(res)
    if len(sizes) > 1:
        a, b = res[sizes[0]], res[sizes[-1]]
        print(f"  {b['mp'] / a['mp']:.0f}x the pixels: peak x{b['peak_mb'] / a['peak_mb']:.2f}, "
              f"peak-base x{b['added_mb'] / max(a['added_mb'], 1):.2f}, time x{b['wall_s'] / a['wall_s']:.1f}; "
              f"the {b['mp']:.0f} MP image itself is {b['out_array_mb']:.0f} MB")
    return res


# ------------------------------------------------------------------ first tile
def part_first_tile(args) -> dict:
    import dask.array as da
    import numpy as np
    import torch

    from napari_lfdeblur.inference.deblur import deblur

    torch.set_num_threads(args.threads)
    side = args.first_side
    print(f"\n== first tile: lazy deblur of a {side}x{side} RGB dask image ({side * side / 1e6:.0f} MP, "
          f"1024-px chunks): build, then compute one 1024x1024 chunk in the middle")
    print(f"{'net':8s} {'dtype':7s} {'tile':>5s} {'build s':>8s} {'chunk s':>8s} {'total s':>8s} {'chunks':>7s}")
    res = {}
    runs = [(name, dtype, tile) for name in args.first_nets for tile in args.first_tiles for dtype in args.first_dtypes
            if dtype == "uint8" or (name == args.first_nets[0] and tile == args.first_tiles[0])]
    nets = {}
    for name, dtype, tile in runs:
        if name not in nets:
            nets[name] = _net(name)
            deblur(np.zeros((64, 64, 3), np.uint8), model=nets[name], device="cpu")  # warm-up
        net = nets[name]
        if dtype == "uint8":
            image = da.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype="uint8",
                                                      chunks=(1024, 1024, 3))
        else:
            image = da.random.default_rng(0).integers(0, 60000, size=(side, side, 3), dtype="uint16",
                                                      chunks=(1024, 1024, 3))
        t0 = time.perf_counter()
        out = deblur(image, model=net, device="cpu", chunk=1024, tile=tile)
        t1 = time.perf_counter()
        iy, ix = out.numblocks[0] // 2, out.numblocks[1] // 2
        block = out.blocks[iy, ix].compute()
        t2 = time.perf_counter()
        assert block.shape[:2] == (1024, 1024) or min(block.shape[:2]) >= 1024
        n = out.numblocks[0] * out.numblocks[1]
        res[f"{name}/{dtype}/tile{tile}"] = {"build_s": t1 - t0, "chunk_s": t2 - t1, "total_s": t2 - t0,
                                             "chunks": n}
        print(f"{name:8s} {dtype:7s} {tile:5d} {t1 - t0:8.2f} {t2 - t1:8.2f} {t2 - t0:8.2f} {n:7d}"
              f"   (all {n} chunks at this rate: ~{(t2 - t1) * n / 3600:.1f} h)")
    t0_, t1_ = args.first_tiles[0], args.first_tiles[-1]
    for name in args.first_nets:
        a, b = res.get(f"{name}/uint8/tile{t0_}"), res.get(f"{name}/uint8/tile{t1_}")
        if a and b and t0_ != t1_:
            print(f"  {name}: tile {t1_} vs {t0_}: chunk time x{b['chunk_s'] / a['chunk_s']:.2f}")
    a, b = res.get(f"lite8/uint8/tile{t0_}"), res.get(f"full/uint8/tile{t0_}")
    if a and b:
        print(f"  full vs lite8, first tile: x{b['total_s'] / a['total_s']:.1f}")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", default=["speed", "memory", "first-tile"],
                   choices=["speed", "memory", "first-tile"])
    p.add_argument("--threads", type=int, default=1, help="torch threads and chunks in flight (default 1)")
    p.add_argument("--speed-side", type=int, default=768, help="side of the speed test image (default 768)")
    p.add_argument("--speed-nets", nargs="+", default=["lite8", "lite16", "full"], choices=list(NETS))
    p.add_argument("--speed-dtypes", nargs="+", default=["float32", "auto"],
                   choices=["float32", "auto", "bfloat16"],
                   help="precisions to time, the first is the baseline (auto = bfloat16 autocast on CPUs that "
                        "compute it natively, float32 elsewhere)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--memory-mp", type=float, nargs="+", default=[4, 16, 64])
    p.add_argument("--memory-net", default="lite8", choices=list(NETS))
    p.add_argument("--memory-tile", type=int, default=None,
                   help="tile size for the memory part (default: deblur's lazy default, one tile per chunk and its "
                        "halo; 512 uses less memory per chunk, more time)")
    p.add_argument("--format", default="ome.zarr", choices=["ome.zarr", "tif"])
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--first-side", type=int, default=20000)
    p.add_argument("--first-nets", nargs="+", default=["lite8", "full"], choices=list(NETS))
    p.add_argument("--first-dtypes", nargs="+", default=["uint8", "uint16"], choices=["uint8", "uint16"],
                   help="uint16 (percentile sampling of the whole image first) runs for the first net and tile only")
    p.add_argument("--first-tiles", type=int, nargs="+", default=[512, 1152],
                   help="tile sizes to compare (default 512, the default, and 1152 = one tile per 1024 chunk + halo)")
    p.add_argument("--tmp", default=None, help="folder for the memory part's outputs (default: system temp)")
    p.add_argument("--json", help="also write all figures to this JSON file")
    p.add_argument("--child-memory", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_memory:
        mp, net, fmt, out_dir, threads, chunk, tile = args.child_memory
        print(json.dumps(child_memory(float(mp), net, fmt, out_dir, int(threads), int(chunk), int(tile))))
        return 0

    import platform

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"load average {os.getloadavg()[0]:.2f}")
    results = {}
    if "speed" in args.parts:
        results["speed"] = part_speed(args)
    if "memory" in args.parts:
        results["memory"] = part_memory(args)
    if "first-tile" in args.parts:
        results["first_tile"] = part_first_tile(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
