#!/usr/bin/env bash
# The GPU measurements of one device lease, in one command (issue #18, parts 1, 3 and 4).
#
#   bash scripts/gpu_checks.sh PACK OUT [MINUTES]
#
# PACK: the data folder made here by `python scripts/train_gpu.py --pack PACK` (the DPDD pairs the
# training reads); OUT: where the results go (at most 8 files: the device tool brings 8 back);
# MINUTES: the training's budget (default 4).  Sized for one call of at most 10 minutes in a 15-minute
# lease: the two benchmarks (at most 3.5 min) and the training (MINUTES + at most 1.5) end within 9.5
# minutes, about 7 when all goes well.  Each step has its own time limit and a failed step does not stop
# the next.  What comes back: session.txt (the machine, each step's end), network.txt/.json,
# train_bench.txt/.json, train.txt, final.json (the held-out evaluation) and default.pt: 8 files.
#
# From a session that is lent a GPU (the device tool; the pack travels as an ignored, carried folder):
#   here:  python scripts/train_gpu.py --pack .gpu_pack      (36.5 MB; 56.8 MB with the tracked project)
#   there: run(command="bash scripts/gpu_checks.sh .gpu_pack $OUT", carry=[".gpu_pack"], timeout_s=600)
# then record the figures in docs/performance.md, and ship default.pt (train_gpu.py --ship, or copy it
# with its model card) only if final.json shows it clearly above the blurry input on the held-out pairs.
#
# Only PyTorch, numpy and scikit-image are needed there (napari, dask and the GUI are never imported);
# the project runs from src/ without being installed.  GPU_CHECKS_DEVICE=cpu GPU_CHECKS_TINY=1 runs
# the same steps at a tiny size on a CPU (tests/scripts/test_gpu_checks.py).
set -u
PACK=${1:?usage: gpu_checks.sh PACK OUT [MINUTES]}
OUT=${2:?usage: gpu_checks.sh PACK OUT [MINUTES]}
MINUTES=${3:-4}
DEVICE=${GPU_CHECKS_DEVICE:-cuda}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to OUT/NAME.txt, say how it ended
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout --signal=TERM --kill-after=20 "$limit" "$@" >"$OUT/$name.txt" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$OUT/session.txt"
}

{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    "$PY" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
} >"$OUT/session.txt" 2>&1

if [ -n "${GPU_CHECKS_TINY:-}" ]; then
    step network 120 "$PY" benchmarks/bench_network.py --device "$DEVICE" --sizes 0.01 --configs lite8 \
        --json "$OUT/network.json"
    step train_bench 120 "$PY" benchmarks/bench_train.py --device "$DEVICE" --configs lite8 --batch 2 --patch 32 \
        --steps 1 --warmup 0 --json "$OUT/train_bench.json"
    WORK=$(mktemp -d)
    step train 300 "$PY" scripts/train_gpu.py --tiny --data "$PACK" --work "$WORK"
    cp "$WORK/final.json" "$OUT/final.json" 2>/dev/null || echo "no final.json written" >>"$OUT/session.txt"
else
    # inference: megapixels per second for each width, bfloat16, 1 and 4 MP (part 4's "MP/s for each width")
    step network 100 "$PY" benchmarks/bench_network.py --device "$DEVICE" --dtype bfloat16 --sizes 1 4 --repeat 3 \
        --configs full lite16 lite8 --json "$OUT/network.json"
    # training: patches per second, the network alone against each data pipeline (part 3)
    step train_bench 110 "$PY" benchmarks/bench_train.py --device "$DEVICE" --configs lite16 --batch 32 \
        --amp bfloat16 --channels-last --workers 8 --steps 10 --warmup 3 --json "$OUT/train_bench.json"
    # the default model in MINUTES (part 4), held-out evaluation at the end
    step train $((MINUTES * 60 + 90)) "$PY" scripts/train_gpu.py --data "$PACK" --minutes "$MINUTES" \
        --work runs/gpu_checks
    cp runs/gpu_checks/final.json "$OUT/final.json" 2>/dev/null || echo "no final.json written" >>"$OUT/session.txt"
    cp runs/gpu_checks/default.pt "$OUT/default.pt" 2>/dev/null || echo "no checkpoint written" >>"$OUT/session.txt"
fi
ls -la "$OUT" >>"$OUT/session.txt"
