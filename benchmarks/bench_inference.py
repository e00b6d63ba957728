"""Deblurring on the CPU by runtime, beside the authors' forward, in one run: time, peak memory, GFLOP/s, precision, tiles.

Cases, each in a fresh process (so that memory peaks do not mix):

``authors``
    the authors' way of running the paper's network: DRBNet width 32 with
    the ``unfold`` FAC, float32, NCHW, the whole image in one forward
    (this project's reimplementation; the authors' own code measured 13.2 s
    and 3.56 GB on a 2-core Intel CPU, which frees intermediates later);
``torch-full`` / ``openvino-full``
    ``lfd.deblur`` of the same network (same weights: random, seed 0) with
    ``backend="torch"`` / ``"openvino"``, default precision and tile plan;
``torch512-full``
    the same through PyTorch in 512-pixel tiles, the tiling ``deblur`` used
    before tiles were planned from memory (1.5 times the pixels at 1 MP);
``torch-shipped`` / ``openvino-shipped``
    the same with the shipped default model (width 16);
``reference-shipped``
    the shipped model in float32 through PyTorch, whole image (the float32
    result the others are compared with; for the full network the
    ``authors`` output is that reference).

Reported per case: ``prep s`` (the first call: loading, and for OpenVINO
tracing, on a cold cache, and compiling), ``time s`` (fastest of
``--repeat`` calls after it, wall clock) and ``cpu s`` (its CPU time, all
threads: comparable on a shared machine when wall times are not),
``peak GB`` (the process's peak resident memory over its whole life:
imports, weights, compiled graphs and the forward), ``GFLOP/s`` (the
network's multiply-adds x 2 per kept pixel, counted by torch's FLOP counter,
over the time: the tiles' overlaps are extra work not counted),
``max |d|`` (largest difference from the float32 result, in 1/255),
and the precision and tile plan used.

Example::

    python benchmarks/bench_inference.py                   # 1 MP, every case, 2 threads
    python benchmarks/bench_inference.py --side 2048 --cases authors openvino-full
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _memory import peak_kib  # benchmarks/_memory.py (this folder is on sys.path)

CASES = ["authors", "torch512-full", "torch-full", "openvino-full", "reference-shipped", "torch-shipped",
         "openvino-shipped"]
REFERENCE = {"full": "authors", "shipped": "reference-shipped"}


def _image(side: int):
    """A real photo (scikit-image's astronaut) resized to side x side, float32 RGB in [0, 1]."""
    from skimage.data import astronaut
    from skimage.transform import resize

    return resize(astronaut(), (side, side), order=1, anti_aliasing=False).astype("float32")


def _flops_per_pixel(base: int) -> float:
    """Multiply-adds x 2 per pixel of one forward (convolutions and matrix products), counted at 256 x 256."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from napari_lfdeblur.network.drbnet import DRBNet

    net = DRBNet(base=base).eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(torch.zeros(1, 3, 256, 256))
    return counter.get_total_flops() / (256 * 256)


def conv_peak(threads: int) -> float:
    """The best GFLOP/s of one large 3x3 convolution in bfloat16, channels_last (oneDNN's best case here): what
    no change to the network's code can beat, only fewer FLOPs can."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for c, side in ((128, 256), (256, 128)):
        conv = torch.nn.Conv2d(c, c, 3, padding=1).to(torch.bfloat16, memory_format=torch.channels_last).eval()
        x = torch.randn(1, c, side, side).to(torch.bfloat16, memory_format=torch.channels_last)
        with torch.inference_mode():
            conv(x)
            for _ in range(3):
                t0 = time.perf_counter()
                conv(x)
                best = max(best, 2 * c * c * 9 * side * side / (time.perf_counter() - t0) / 1e9)
    return best


def child(case: str, args) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from napari_lfdeblur.network.checkpoint import load_model
    from napari_lfdeblur.network.drbnet import DRBNet

    img = _image(args.side)
    out: dict = {"case": case, "threads": torch.get_num_threads()}
    if case == "authors":
        torch.manual_seed(0)
        net = DRBNet(base=32, fac_impl="unfold").eval()
        x = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous() * 2 - 1

        def run():
            with torch.inference_mode():
                return ((net(x)[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()

        out.update(precision="float32", plan="whole image, NCHW, unfold FAC", base=32)
    else:
        import importlib

        from napari_lfdeblur.inference.runtime import resolve_runtime

        deblur_module = importlib.import_module("napari_lfdeblur.inference.deblur")

        backend, which = case.split("-")
        tile = 512 if backend == "torch512" else None
        backend = "torch" if backend == "torch512" else backend
        if which == "full":
            torch.manual_seed(0)
            net = load_model(DRBNet(base=32), device="cpu")
        else:
            net = load_model("default", device="cpu", dtype="float32" if backend == "reference" else None)
        plans = []
        real_tiled = deblur_module.run_tiles

        def recording(image, fn, tile, *a, **k):  # the tile plan deblur chose
            plans.append(tuple(tile) if not isinstance(tile, int) else (tile, tile))
            return real_tiled(image, fn, tile, *a, **k)

        deblur_module.run_tiles = recording
        runtime = resolve_runtime(net, "cpu", backend="torch" if backend == "reference" else backend)
        if backend == "reference":
            def run():
                return runtime(img)

            out.update(plan="whole image")
        else:
            def run():
                return deblur_module.deblur(img, model=net, backend=backend, tile=tile)
        out.update(precision=runtime.precision, base=getattr(net, "base", 32), runtime=runtime.backend)
    t0 = time.perf_counter()
    y = run()
    out["prep"] = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        y = run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out.update(time=min(times), times=times, cpu=min(cpu), peak_gb=peak_kib(False) / 2**20)
    if case not in ("authors",) and not case.startswith("reference"):
        from napari_lfdeblur.inference.tile_plan import DEFAULT_OVERLAP, computed_pixels

        th, tw = plans[-1] if plans else (args.side, args.side)
        n = computed_pixels((args.side, args.side), (th, tw), DEFAULT_OVERLAP)
        out["plan"] = f"{th}x{tw} tiles, {n / args.side**2:.2f}x the pixels"
    np.save(os.path.join(args.outdir, f"{case}.npy"), np.asarray(y, dtype=np.float32))
    return out


def run_child(case: str, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", case, "--side", str(args.side),
           "--repeat", str(args.repeat), "--threads", str(args.threads), "--outdir", args.outdir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"case": case, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=1024, help="image side in pixels (default 1024: 1 MP)")
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--repeat", type=int, default=2, help="timed calls after the first (the fastest is reported)")
    p.add_argument("--threads", type=int, default=2, help="torch and OpenVINO threads (default 2)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--outdir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)), flush=True)
        return 0

    import numpy as np

    flops = {32: _flops_per_pixel(32), 16: _flops_per_pixel(16)}
    mp = args.side**2 / 2**20
    print(f"{args.side}x{args.side} ({mp:.2f} MP) RGB, {args.threads} threads, cpus={os.cpu_count()}; "
          f"network: {flops[32] * 2**20 / 1e12:.2f} TFLOP/MP (width 32), {flops[16] * 2**20 / 1e12:.2f} (width 16)")
    print(f"{'case':<18} {'prep s':>7} {'time s':>7} {'cpu s':>6} {'peak GB':>7} {'GFLOP/s':>7} {'max |d|':>7}  "
          f"precision, runtime, plan")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        args.outdir = tmp
        for case in args.cases:
            r = run_child(case, args)
            results[case] = r
            if "error" in r:
                print(f"{case:<18} failed: {r['error']}")
                continue
            which = "full" if case == "authors" or case.endswith("full") else "shipped"
            ref = os.path.join(tmp, f"{REFERENCE[which]}.npy")
            d = float("nan")
            if os.path.exists(ref) and REFERENCE[which] != case:
                d = float(np.abs(np.load(os.path.join(tmp, f"{case}.npy")) - np.load(ref)).max() * 255)
            r["max_diff_255"] = d
            r["gflops"] = flops[r.get("base", 32)] * args.side**2 / r["time"] / 1e9
            print(f"{case:<18} {r['prep']:>7.1f} {r['time']:>7.2f} {r['cpu']:>6.1f} {r['peak_gb']:>7.2f} "
                  f"{r['gflops']:>7.0f} {d:>7.2f}  {r['precision']}, {r.get('runtime', 'torch')}, {r['plan']}",
                  flush=True)
    base = results.get("authors")
    if base and "error" not in base:
        print("\nagainst the authors' forward in this run (time, CPU time, peak memory):")
        for case, r in results.items():
            if case != "authors" and "error" not in r:
                print(f"  {case:<18} {base['time'] / r['time']:5.2f}x faster, {base['cpu'] / r['cpu']:5.2f}x less CPU, "
                      f"{r['peak_gb']:.2f} / {base['peak_gb']:.2f} GB")
        peak = conv_peak(args.threads)
        floor = flops[32] * args.side**2 / peak / 1e9
        results["ceiling"] = {"conv_peak_gflops": peak, "full_network_s": floor, "vs_authors": base["time"] / floor}
        print(f"\nceiling on this CPU: one large bfloat16 3x3 convolution runs at {peak:.0f} GFLOP/s; the width-32 "
              f"network's FLOPs at that rate take {floor:.2f} s, {base['time'] / floor:.2f}x the authors' time: "
              "the most any runtime reaches here without computing fewer FLOPs")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
