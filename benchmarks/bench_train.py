"""Training throughput of DRBNet: patches per second of the network alone and with the data pipeline.

One training step = forward with the intermediate estimates, the loss,
backward, gradient clipping and an Adam update, exactly as the trainer does it
(``Trainer._train_step``).  Each configuration is timed with each of
``--pipeline``:

- ``network``: the network alone, on a fixed batch already on the device;
- ``loader``: the pairs prepared by the data loader (``num_workers`` =
  ``--workers`` processes, 0: in this process) and copied to the device, as
  every run trains.

For the data loader it also times the data alone (batches made and copied to
the device, no network) and prints the ratio of its step throughput to the
network's: near 1, data costs little; well below 1, the data starves the
network.
Each timing runs ``--warmup`` untimed steps, then ``--steps`` timed ones;
reported: the median seconds per step and patches per second (batch / median).

Configurations: ``lite8`` (base 8, 0.74 M parameters), ``lite12`` (base 12, 1.65 M), ``lite16`` (base 16,
2.9 M), ``full`` (base 32, the paper's 11.7 M).  Defaults: patch 128, batch 4,
the phase-1 loss (multi-scale L1); ``--loss shift_l1`` times the phase-2 loss.
``--data``: ``synthetic`` (procedural light fields, the default) or a pair
folder.

``--amp off auto`` times every configuration in float32 and with the
trainer's default mixed precision (bfloat16 on a CPU with AVX512-BF16 or AMX,
float16 on CUDA; ``bfloat16`` asks for it on CUDA), one after the other in
this process, and prints the speed-up of each precision over the first one.
``--channels-last`` and ``--compile`` time the trainer's options of those names.

Examples::

    python benchmarks/bench_train.py --configs lite16 --pipeline network loader
    python benchmarks/bench_train.py --configs lite16 full --amp off auto --steps 6 --pipeline network
    python benchmarks/bench_train.py --device cuda --patch 128 --batch 32 --amp bfloat16 --channels-last --workers 8

The CPU here is shared: run it when the machine is quiet, or read the
numbers as upper bounds on the time per step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

CONFIGS = {"lite8": 8, "lite12": 12, "lite16": 16, "full": 32}


def _trainer(base: int, args, amp):
    """A trainer set up as its run would be (network, data loader, ...), before its first step."""
    import torch

    from napari_lfdeblur.training.trainer import Trainer

    torch.manual_seed(0)
    tr = Trainer(args.data, model=base, loss=args.loss, steps=args.warmup + args.steps, batch=args.batch,
                 patch=args.patch, device=args.device, amp=amp, seed=0, distributed=False, num_workers=args.workers,
                 channels_last=args.channels_last, compile=args.compile or False)
    tr._start()
    return tr


def _time(args, device, work) -> dict:
    """Median seconds of ``work(i)`` over the timed steps (the device synchronised around each)."""
    import torch

    sync = (lambda: torch.cuda.synchronize()) if torch.device(device).type == "cuda" else (lambda: None)
    times = []
    for i in range(args.warmup + args.steps):
        sync()
        t = time.perf_counter()
        work(i)
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds_per_step": med, "min": min(times), "max": max(times), "patches_per_s": args.batch / med}


def bench(base: int, args, amp="auto") -> dict:
    """``{pipeline: timing}`` of one network width and precision (see the module docstring)."""
    import torch

    out = {}
    tr = _trainer(base, args, amp)
    device = tr.setup.device
    if "network" in args.pipeline:
        g = torch.Generator().manual_seed(0)
        fixed = [torch.rand(args.batch, 3, args.patch, args.patch, generator=g).to(device) for _ in range(2)]
        out["network"] = _time(args, device, lambda i: tr._train_step(*fixed, i))
    if "loader" in args.pipeline:
        t = _trainer(base, args, amp) if "network" in args.pipeline else tr  # a fresh run: its first steps
        batches = iter(t.loader)
        out["loader"] = _time(args, device, lambda i: t._train_step(*next(batches), i))
        data_only = iter(_trainer(base, args, amp).loader)
        out["loader data"] = _time(args, device, lambda i: [x.to(device) for x in next(data_only)])
    for r in out.values():
        r.update(base=base, params=sum(p.numel() for p in tr.setup.net.parameters()), device=str(device),
                 threads=torch.get_num_threads(), amp=tr.setup.amp_name)
    return out


PIPE_LABELS = {"network": "network alone", "loader": "+ data loader", "loader data": "  data loader alone"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=["lite16"], choices=list(CONFIGS))
    ap.add_argument("--pipeline", nargs="+", default=["network", "loader"], choices=["network", "loader"],
                    help="what each step includes (see the module docstring; default: both)")
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--loss", default="l1", help="l1 (phase 1, multi-scale) or shift_l1 (phase 2) ...")
    ap.add_argument("--data", default="synthetic", help="synthetic (procedural light fields) or a pair folder")
    ap.add_argument("--workers", type=int, default=0, help="data-loader processes of the loader pipeline")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--amp", nargs="+", default=["auto"], choices=["auto", "off", "bfloat16", "float16"],
                    help="precision(s) to time: auto (the trainer's default), off (float32), bfloat16, float16")
    ap.add_argument("--channels-last", action="store_true", help="channels-last weights and inputs")
    ap.add_argument("--compile", nargs="?", const=True, default=None,
                    help="torch.compile the network (optionally a backend name)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {}
    print(f"patch {args.patch}, batch {args.batch}, loss {args.loss}, data {args.data}, device {args.device}, "
          f"{torch.get_num_threads()} threads, {args.workers} loader workers; {args.warmup} warm-up + "
          f"{args.steps} timed steps each", flush=True)

    def label(name, amp):
        return name if len(args.amp) == 1 else f"{name}/{amp}"

    def ratios(title, ref_of):
        print(title)
        for (name, amp), r in rows.items():
            ref = rows[ref_of(name, amp)]
            print(f"  {label(name, amp):13s} x{ref['seconds_per_step'] / r['seconds_per_step']:.2f}")

    for name in args.configs:
        for amp in args.amp:
            res = bench(CONFIGS[name], args, amp)
            first = next(iter(res.values()))
            print(f"  {label(name, amp)}: base {first['base']} ({first['params'] / 1e6:.2f} M params), {first['amp']}",
                  flush=True)
            net = res.get("network")
            for pipe, r in res.items():
                ratio = ""
                if net is not None and pipe != "network":
                    ratio = f"  x{net['seconds_per_step'] / r['seconds_per_step']:.2f} of the network alone"
                print(f"    {PIPE_LABELS[pipe]:24s} {r['seconds_per_step']:7.3f} s/step (min {r['min']:.3f}, max "
                      f"{r['max']:.3f})  {r['patches_per_s']:8.2f} patches/s{ratio}", flush=True)
            rows[name, amp] = {**res[args.pipeline[0]], "pipelines": res}
    if "full" in args.configs and len(args.configs) > 1:
        ratios(f"speed relative to full (base 32), same precision ({args.pipeline[0]}):",
               lambda name, amp: ("full", amp))
    if len(args.amp) > 1:
        ratios(f"speed relative to {args.amp[0]}, same network ({args.pipeline[0]}):",
               lambda name, amp: (name, args.amp[0]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": {label(*k): r for k, r in rows.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
