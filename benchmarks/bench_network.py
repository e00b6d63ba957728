"""Forward time and peak memory of DRBNet: full and lite widths, shift-FAC vs unfold-FAC.

Every (configuration, size) runs in a fresh subprocess so that memory peaks do
not mix.  In the child: build the network (random weights), one small warm-up
forward, then reset the kernel's peak-RSS counter (``/proc/self/clear_refs``)
and time ``--repeat`` forwards of one (1, 3, H, W) image under
``torch.inference_mode``.  Reported:

- ``time``: the fastest forward, in seconds (wall clock), and ``cpu s``: the
  smallest CPU time of a forward (all threads; on a CPU shared with other
  work, wall times vary a lot while CPU times stay comparable);
- ``peak``: the process's peak resident memory during the forwards (VmHWM, so
  it includes Python, torch and the weights), and ``fwd+``: that peak minus
  the resident memory just before the forward;
- on CUDA, ``cuda``: ``torch.cuda.max_memory_allocated`` during the forward.

Configurations: ``full`` (base 32, the paper's network, shift-and-accumulate
FAC), ``unfold`` (the same network with the unfold-based FAC, the baseline),
``lite16`` and ``lite8`` (base 16 and 8); ``full-nchw`` (not run by default):
the full network in NCHW instead of the channels_last layout that
``load_model`` uses on CPU and CUDA.  The unfold baseline is skipped at
4 MP unless ``--unfold-4mp`` (it needs about 14 GB) and whenever the machine
has less free memory than it would need.

Examples::

    python benchmarks/bench_network.py                       # 0.25, 1, 4 MP; all configs
    python benchmarks/bench_network.py --sizes 0.25 1 --configs full unfold
    python benchmarks/bench_network.py --sizes 1 --device cuda --dtype float16

Reference (the authors' code, this 2-core CPU, 1 MP): 13.2 s, 3.56 GB peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

from _memory import peak_kib, reset_peak_rss, status_kib  # benchmarks/_memory.py (this folder is on sys.path)

CONFIGS = {
    "full": {"base": 32, "fac_impl": "shift"},
    "unfold": {"base": 32, "fac_impl": "unfold"},
    "lite16": {"base": 16, "fac_impl": "shift"},
    "lite8": {"base": 8, "fac_impl": "shift"},
    # not run by default: the full network with NCHW tensors instead of channels_last
    "full-nchw": {"base": 32, "fac_impl": "shift", "nchw": True},
}
DEFAULT_CONFIGS = ["full", "unfold", "lite16", "lite8"]
AUTHORS_1MP = {"time": 13.2, "peak_gb": 3.56}
# rough peak of the unfold FAC (GB per megapixel, whole network) to decide whether it can run
UNFOLD_GB_PER_MP = 3.6


def side_for(mp: float) -> int:
    """Square side (multiple of 8) of an image of about ``mp`` megapixels (1 MP = 1024 x 1024)."""
    return max(8, int(round(math.sqrt(mp) * 1024 / 8)) * 8)


def child(config: str, side: int, args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from napari_lfdeblur.devices import resolve_device
    from napari_lfdeblur.network.drbnet import DRBNet
    from napari_lfdeblur.network.precision import inference_precision, use_channels_last

    dev = resolve_device(args.device)
    dtype = inference_precision(args.dtype, dev)[0]
    cfg = CONFIGS[config]
    torch.manual_seed(0)
    model = DRBNet(base=cfg["base"], fac_impl=cfg["fac_impl"]).eval().to(dev, dtype)
    # the memory format load_model/deblur use (channels_last on CPU and CUDA)
    cl = use_channels_last(dev) and not cfg.get("nchw")
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)

    def make(s):
        g = torch.Generator().manual_seed(1)
        # a smooth-ish image in [-1, 1]: noise blurred by down/up sampling
        x = torch.rand((1, 3, max(1, s // 16), max(1, s // 16)), generator=g)
        x = torch.nn.functional.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        return (x * 2 - 1).to(dev, dtype).contiguous(memory_format=fmt)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        model(make(64))  # warm-up: kernels, thread pools
        sync()
        x = make(side)
        rss_before = status_kib("VmRSS") or 0
        exact = reset_peak_rss()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            y = model(x)
            sync()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            del y
    peak_kb = peak_kib(exact)
    out = {
        "config": config,
        "base": cfg["base"],
        "fac": cfg["fac_impl"],
        "side": side,
        "mp": side * side / 1e6,
        "time": min(times),
        "times": times,
        "cpu_time": min(cpu),
        "peak_gb": peak_kb / 2**20,
        "fwd_gb": (peak_kb - rss_before) / 2**20,
        "peak_exact": exact,
        "device": str(dev),
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "channels_last": cl,
    }
    if dev.type == "cuda":
        out["cuda_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return out


def run_child(config: str, side: int, args) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        config,
        str(side),
        "--device",
        args.device,
        "--repeat",
        str(args.repeat),
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.dtype:
        cmd += ["--dtype", args.dtype]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"config": config, "side": side, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}


def available_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[0.25, 1.0, 4.0], help="megapixels (1 MP = 1024^2)")
    p.add_argument(
        "--configs",
        nargs="+",
        default=DEFAULT_CONFIGS,
        choices=list(CONFIGS),
        help=f"default: {' '.join(DEFAULT_CONFIGS)}",
    )
    p.add_argument("--repeat", type=int, default=1, help="forwards per measurement (the fastest is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, auto")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16 (GPU)")
    p.add_argument("--unfold-4mp", action="store_true", help="also run the unfold baseline at 4 MP and above")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "SIDE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)), flush=True)
        return 0

    results = []
    print(
        f"device={args.device} dtype={args.dtype or 'float32'} repeat={args.repeat} "
        f"threads={args.threads or 'default'} cpus={os.cpu_count()}"
    )
    header = (
        f"{'config':<9} {'base':>4} {'FAC':<7} {'size':>11} {'MP':>5} {'time s':>8} {'cpu s':>7} "
        f"{'peak GB':>8} {'fwd+ GB':>8}"
    )
    if args.device.startswith("cuda"):
        header += f" {'cuda GB':>8}"
    print(header)
    for mp in args.sizes:
        side = side_for(mp)
        for config in args.configs:
            if CONFIGS[config]["fac_impl"] == "unfold":
                need = UNFOLD_GB_PER_MP * side * side / 2**20 + 0.5
                if mp >= 4 and not args.unfold_4mp:
                    print(f"{config:<8} skipped at {side}x{side}: needs about {need:.0f} GB (--unfold-4mp to run it)")
                    continue
                if args.device == "cpu" and need > available_gb() * 0.9:
                    print(
                        f"{config:<8} skipped at {side}x{side}: needs about {need:.0f} GB, "
                        f"{available_gb():.1f} GB available"
                    )
                    continue
            r = run_child(config, side, args)
            results.append(r)
            if "error" in r:
                print(f"{config:<8} {side}x{side}: failed: {r['error']}")
                continue
            line = (
                f"{config:<9} {r['base']:>4} {r['fac']:<7} {f'{side}x{side}':>11} {r['mp']:>5.2f} "
                f"{r['time']:>8.2f} {r['cpu_time']:>7.1f} {r['peak_gb']:>8.2f} {r['fwd_gb']:>8.2f}"
            )
            if "cuda_gb" in r:
                line += f" {r['cuda_gb']:>8.2f}"
            print(line, flush=True)

    ok = [r for r in results if "error" not in r]
    by = {(r["config"], r["side"]): r for r in ok}
    ratios = [(s, by[("full", s)], by[("unfold", s)]) for (c, s) in by if c == "full" and ("unfold", s) in by]
    if ratios:
        print("\nshift-FAC (full) vs unfold-FAC, same network:")
        for s, a, b in sorted(ratios, key=lambda t: t[0]):
            print(
                f"  {s}x{s}: time {a['time']:.2f} / {b['time']:.2f} s = {a['time'] / b['time']:.2f}x, "
                f"cpu {a['cpu_time']:.1f} / {b['cpu_time']:.1f} s = {a['cpu_time'] / b['cpu_time']:.2f}x, "
                f"peak {a['peak_gb']:.2f} / {b['peak_gb']:.2f} GB = {a['peak_gb'] / b['peak_gb']:.2f}x, "
                f"forward memory {a['fwd_gb']:.2f} / {b['fwd_gb']:.2f} GB = {a['fwd_gb'] / b['fwd_gb']:.2f}x"
            )
    one = by.get(("full", side_for(1.0)))
    if one and args.device == "cpu":
        print(
            f"\nfull at 1 MP vs the authors' code (reference on the 2-core CPU: {AUTHORS_1MP['time']} s, "
            f"{AUTHORS_1MP['peak_gb']} GB): time {one['time'] / AUTHORS_1MP['time']:.2f}x, "
            f"peak {one['peak_gb'] / AUTHORS_1MP['peak_gb']:.2f}x "
            f"(target: under 1.5 GB and no slower)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
