"""Multi-process training: ``torchrun --nproc_per_node 2`` on the CPU (gloo), a tiny network, 3 steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, sys
    import torch
    torch.set_num_threads(1)
    from napari_lfdeblur.training import train

    data, out = sys.argv[1], sys.argv[2]
    events = []
    r = train(data, model=4, steps=3, batch=1, patch=32, device="cpu", seed=0, out=out, val=0.25, val_patch=32,
              callback=lambda e: events.append(e.kind))
    rank = int(os.environ["RANK"])
    h = hashlib.sha256()
    for v in r.model.state_dict().values():
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "steps": r.steps, "params": h.hexdigest(), "events": events,
                   "world": r.summary["world_size"], "losses": r.losses}, f)
    """
)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path, tiny_pair_folder):
    data = tiny_pair_folder
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    out.mkdir()
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = launcher + ["--standalone", "--nproc_per_node", "2", str(script), str(data), str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["steps"] == 3 and r["world"] == 2 for r in ranks)
    assert ranks[0]["params"] == ranks[1]["params"]  # DDP kept the replicas identical
    assert ranks[0]["losses"] == ranks[1]["losses"]  # the logged loss is the mean over ranks
    assert "finished" in ranks[0]["events"] and ranks[1]["events"] == []  # callback on rank 0 only
    assert (out / "last.pt").is_file() and (out / "resume.pt").is_file() and (out / "log.csv").is_file()

    from napari_lfdeblur.network.checkpoint import load_model
    from napari_lfdeblur.network.record import record_of

    summary = record_of(load_model(out / "last.pt", device="cpu")).training
    assert summary["world_size"] == 2 and summary["steps"] == 3
