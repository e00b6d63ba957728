"""scripts/train_gpu.py: the GPU recipe end to end at a tiny size on the CPU, its plan, its data budget, and the
shipped weights it must not touch."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_gpu.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_gpu_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _check_run(script, work: Path, out: Path):
    from napari_lfdeblur.network.checkpoint import load_model

    assert out.is_file() and out.stat().st_size <= script.MAX_CHECKPOINT_MB * 2**20
    model = load_model(out, device="cpu")
    assert model.config["base"] == 4
    final = json.loads((work / "final.json").read_text())
    assert final["psnr"] > 10 and final["input_psnr"] > 10  # scored, output and input
    assert (work / "phase1" / "last.pt").is_file() and (work / "phase2" / "last.pt").is_file()
    assert json.loads((work / "plan.json").read_text())["steps1"] == 6
    return final


def test_tiny_run_on_procedural_data_alone(script, tmp_path, capsys):
    shipped = _digest(script.SHIPPED)
    work, out = tmp_path / "run", tmp_path / "model.pt"
    code = script.main(["--tiny", "--data", str(tmp_path / "no_data"), "--work", str(work), "--weights-out",
                        str(out)])
    assert code == 0
    final = _check_run(script, work, out)
    assert "procedural" in final["heldout"]
    printed = capsys.readouterr().out
    assert "[phase 1] step 6/6" in printed and "[phase 2] step 4/4" in printed and "held-out: model PSNR" in printed
    assert _digest(script.SHIPPED) == shipped


def test_tiny_run_with_the_dpdd_pairs_evaluates_the_held_out_pairs(script, dpdd_pairs, tmp_path):
    work, out = tmp_path / "run", tmp_path / "model.pt"
    code = script.main(["--tiny", "--data", str(dpdd_pairs.parents[1]), "--work", str(work), "--weights-out",
                        str(out)])
    assert code == 0
    final = _check_run(script, work, out)
    assert [r["name"] for r in final["per_image"]] == list(script.HELDOUT[:2])
    # run again: everything is done, so it only evaluates again, with the same figures
    assert script.main(["--tiny", "--data", str(dpdd_pairs.parents[1]), "--work", str(work), "--weights-out",
                        str(out)]) == 0
    assert json.loads((work / "final.json").read_text())["psnr"] == pytest.approx(final["psnr"])


def test_the_held_out_pairs_are_those_of_train_default(script, train_default_script, dpdd_pairs):
    assert list(script.HELDOUT) == train_default_script.dpdd_split_names(dpdd_pairs)
    train = script.training_names(dpdd_pairs, 36)
    assert len(set(train)) == 36 and not set(train) & set(script.HELDOUT)


def test_the_project_and_the_data_the_run_reads_fit_the_budget(script, dpdd_pairs):
    files = script.pair_files(dpdd_pairs, list(script.HELDOUT) + script.training_names(dpdd_pairs, 36))
    assert len(files) == 2 * 46
    total = sum(f.stat().st_size for f in files) + script.project_bytes()
    assert total <= script.MAX_TRAVEL_MB * 1e6, f"{total / 1e6:.1f} MB"


def test_pack_copies_exactly_the_files_the_run_reads(script, dpdd_pairs, tmp_path):
    assert script.main(["--pack", str(tmp_path / "pack"), "--train-pairs", "3", "--data",
                        str(dpdd_pairs.parents[1])]) == 0
    folder = tmp_path / "pack" / "pairs" / script.DPDD
    names = sorted(f.stem for f in (folder / "sharp").iterdir())
    assert names == sorted(list(script.HELDOUT) + script.training_names(dpdd_pairs, 3))
    assert sorted(f.stem for f in (folder / "blur").iterdir()) == names
    assert script.training_names(folder, 3) == script.training_names(dpdd_pairs, 3)


def test_the_shipped_weights_are_written_only_when_asked(script, tmp_path, capsys):
    shipped = _digest(script.SHIPPED)
    code = script.main(["--tiny", "--data", str(tmp_path), "--work", str(tmp_path / "run"), "--weights-out",
                        str(script.SHIPPED)])
    assert code == 2 and "--ship" in capsys.readouterr().err
    assert _digest(script.SHIPPED) == shipped and not (tmp_path / "run").exists()


def test_the_plan_fills_the_budget_and_is_kept(script, train_default_script, tmp_path, one_torch_thread):
    from napari_lfdeblur.training import CancelToken

    args = script.parse(["--tiny", "--minutes", "1.5"])
    args.steps1 = args.steps2 = None
    args.device_type = "cpu"
    data1, _, data2, *_ = script.phase_data(args, None, train_default_script)
    arch = {"base": 4, "input_detail": True}
    plan = script.plan_steps(args, tmp_path, data1, data2, arch, CancelToken())
    t1, t2 = plan["seconds_per_step"]
    assert t1 > 0 and t2 > 0
    # 80 % of what the timing left of 90 s (at least 60 s), 60 % to phase 1 and 40 % to phase 2 (the plan keeps
    # the times rounded: a step either way)
    budget = max(60.0, 0.8 * (90 - plan["calibration_seconds"]))
    assert plan["steps1"] == pytest.approx(max(50, 0.6 * budget / t1), abs=2)
    assert plan["steps2"] == pytest.approx(max(50, 0.4 * budget / t2), abs=2)
    args.minutes = 100
    assert script.plan_steps(args, tmp_path, data1, data2, arch, CancelToken()) == json.loads(
        (tmp_path / "plan.json").read_text())
