"""Training throughput of DRBNet: patches per second for the lite and full widths.

One training step = forward with the intermediate estimates, the loss,
backward, gradient clipping and an Adam update, exactly as the trainer does it
(``Trainer._train_step``), on random (blurred, sharp) batches already in
memory (data loading excluded: see ``--data`` to include it).  Each
configuration runs ``--warmup`` untimed steps, then ``--steps`` timed ones;
reported: the median seconds per step, patches per second (batch / median),
and the speed relative to the full network.

Configurations: ``lite8`` (base 8, 0.74 M parameters), ``lite12`` (base 12, 1.65 M), ``lite16`` (base 16,
2.9 M), ``full`` (base 32, the paper's 11.7 M).  Defaults: patch 128, batch 4,
the phase-1 loss (multi-scale L1); ``--loss shift_l1`` times the phase-2 loss.

``--amp off auto`` times every configuration in float32 and with the
trainer's default mixed precision (bfloat16 on a CPU with AVX512-BF16 or AMX,
float16 on CUDA), one after the other in this process, and prints the
speed-up of each precision over the first one.

Examples::

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --configs lite16 full --amp off auto --steps 6
    python benchmarks/bench_train.py --configs lite16 --steps 10 --data synthetic
    python benchmarks/bench_train.py --device cuda --patch 256 --batch 16

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


def bench(base: int, args, amp="auto") -> dict:
    import torch

    from napari_lfdeblur.training.trainer import Trainer

    torch.manual_seed(0)
    data = args.data if args.data != "none" else None
    steps_total = args.warmup + args.steps
    tr = Trainer(
        data or "synthetic",
        model=base,
        loss=args.loss,
        steps=steps_total,
        batch=args.batch,
        patch=args.patch,
        device=args.device,
        amp=amp,
        seed=0,
        distributed=False,
    )
    tr.ctx = None
    from napari_lfdeblur.training import ddp

    tr.ctx = ddp.DistContext()
    tr._setup()
    tr._bad = 0
    tr.net.clip_output = False
    g = torch.Generator().manual_seed(0)
    fixed = (torch.rand(args.batch, 3, args.patch, args.patch, generator=g),
             torch.rand(args.batch, 3, args.patch, args.patch, generator=g))
    it = iter(tr.loader) if data else None
    times = []
    sync = (lambda: torch.cuda.synchronize()) if tr.device.type == "cuda" else (lambda: None)
    for i in range(steps_total):
        sync()
        t = time.perf_counter()
        blur, sharp = next(it) if it is not None else fixed
        tr._train_step(blur, sharp, i)
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {
        "base": base,
        "params": sum(p.numel() for p in tr.net.parameters()),
        "seconds_per_step": med,
        "min": min(times),
        "max": max(times),
        "patches_per_s": args.batch / med,
        "device": str(tr.device),
        "threads": torch.get_num_threads(),
        "amp": tr._amp_now(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--loss", default="l1", help="l1 (phase 1, multi-scale) or shift_l1 (phase 2) ...")
    ap.add_argument("--data", default="none", help="none (random tensors), synthetic, or a pair folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--amp", nargs="+", default=["auto"], choices=["auto", "off", "bfloat16", "float16"],
                    help="precision(s) to time: auto (the trainer's default), off (float32), bfloat16, float16")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {}
    print(f"patch {args.patch}, batch {args.batch}, loss {args.loss}, data {args.data}, device {args.device}, "
          f"{torch.get_num_threads()} threads; {args.warmup} warm-up + {args.steps} timed steps each", flush=True)
    def label(name, amp):
        return name if len(args.amp) == 1 else f"{name}/{amp}"

    def ratios(title, ref_of):
        print(title)
        for (name, amp), r in rows.items():
            ref = rows[ref_of(name, amp)]
            print(f"  {label(name, amp):13s} x{ref['seconds_per_step'] / r['seconds_per_step']:.2f}")

    for name in args.configs:
        for amp in args.amp:
            rows[name, amp] = r = bench(CONFIGS[name], args, amp)
            print(f"  {label(name, amp):13s} base {r['base']:2d} {r['params'] / 1e6:6.2f} M params  {r['amp']:8s} "
                  f"{r['seconds_per_step']:7.3f} s/step (min {r['min']:.3f}, max {r['max']:.3f})  "
                  f"{r['patches_per_s']:7.2f} patches/s", flush=True)
    if "full" in args.configs and len(args.configs) > 1:
        ratios("speed relative to full (base 32), same precision:", lambda name, amp: ("full", amp))
    if len(args.amp) > 1:
        ratios(f"speed relative to {args.amp[0]}, same network:", lambda name, amp: (name, args.amp[0]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": {label(*k): r for k, r in rows.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
