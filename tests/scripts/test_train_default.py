"""scripts/train_default.py: the phase-2 stage options and the light-field mix of a stage."""

import argparse

import pytest


@pytest.fixture
def script(train_default_script):
    return train_default_script


def test_stage_spec_parses_every_key(script):
    st = script.stage_spec("steps=1200,patch=128,batch=4,lr=5e-5,warmup=10,seed=2,mix=0.5")
    assert st == {"steps": 1200, "patch": 128, "batch": 4, "lr": 5e-5, "warmup": 10, "seed": 2, "mix": 0.5}


def test_stage_spec_takes_a_photo_share_that_leaves_room_for_dpdd(script):
    assert script.stage_spec("mix=0.2,photo=0.3") == {"mix": 0.2, "photo": 0.3}
    with pytest.raises(argparse.ArgumentTypeError, match="add up to less than 1"):
        script.stage_spec("mix=0.5,photo=0.5")


@pytest.mark.parametrize("text", ["mix=1", "mix=-0.1", "mix=half", "speed=3", "lr=", "photo=-0.2"])
def test_stage_spec_rejects_bad_values_with_the_key_named(script, text):
    with pytest.raises(argparse.ArgumentTypeError, match=text.split("=")[0]):
        script.stage_spec(text)


def test_stages_take_defaults_for_keys_left_out(script):
    args = script.parse(["--stage2", "steps=100", "--stage2", "steps=50,mix=0.3,lr=1e-5"])
    first, second = args.stages2
    assert first["mix"] == 0.0 and first["lr"] == args.lr2 and first["patch"] == args.patch
    assert second == {**first, "steps": 50, "mix": 0.3, "lr": 1e-5}


def test_mix_draws_the_requested_share_from_light_fields(script, dpdd_pairs, lytro_plants, one_torch_thread):
    from napari_lfdeblur.lightfield.readers import read_lightfield
    from napari_lfdeblur.training import open_pairs

    dpdd = open_pairs(dpdd_pairs, patch=64)
    st = {"mix": 0.5, "patch": 64, "seed": 0}
    data, desc = script.mix_lightfields(dpdd, "DPDD", st, read_lightfield(lytro_plants))
    n = len(dpdd)
    assert len(data) == 2 * n  # half of the draws are light-field pairs
    proc, plants = data.datasets[1], data.datasets[2]
    assert len(plants) == round(0.2 * n) and len(proc) == n - round(0.2 * n)
    assert "50 % of draws" in desc and "procedural 40 %" in desc
    # a light-field draw is a real (blurred, sharp) pair at the stage's patch size
    blurred, sharp = data[len(data) - 1]
    assert blurred.shape == sharp.shape == (3, 64, 64)
    assert float((blurred - sharp).abs().mean()) > 0


def test_photo_share_draws_from_light_fields_textured_with_the_given_shots(script, dpdd_pairs, lytro_plants,
                                                                          one_torch_thread):
    import numpy as np

    from napari_lfdeblur.lightfield.readers import read_lightfield
    from napari_lfdeblur.training import open_pairs

    dpdd = open_pairs(dpdd_pairs, patch=64)
    st = {"mix": 0.2, "photo": 0.3, "patch": 64, "seed": 0}
    grey = np.full((300, 300, 3), 77, np.uint8)  # a flat photo: its pairs are flat, unlike any other draw
    data, desc = script.mix_lightfields(dpdd, "DPDD", st, read_lightfield(lytro_plants), [grey])
    n = len(dpdd)
    photo = data.datasets[-1]
    assert len(photo) == round(n * 0.3 / 0.5) and len(data) == n + round(n * 0.2 / 0.5) + len(photo)
    assert "50 % of draws" in desc and "sharp shots 30 %" in desc and "procedural 16 %" in desc
    blurred, sharp = data[len(data) - 1]
    assert blurred.shape == sharp.shape == (3, 64, 64)
    assert np.allclose(sharp.numpy(), 77 / 255, atol=1e-3) and np.allclose(blurred.numpy(), 77 / 255, atol=1e-3)


def test_stopped_during_the_final_evaluation_writes_no_model(script, dpdd_pairs, lytro_plants, tmp_path, monkeypatch):
    # a signal during the last evaluation used to ship a card scored on part of the held-out pairs
    import napari_lfdeblur.training as training

    real_evaluate = training.score_model

    def evaluate_then_stop(model, data, **kw):  # what a stop after the first held-out pair returns
        return {**real_evaluate(model, data.subset([0]), **kw), "stopped": True}

    monkeypatch.setattr(training, "score_model", evaluate_then_stop)  # the script's own final evaluation
    out = tmp_path / "weights" / "default.pt"
    # --quick at a quarter of the default network's cost: this is about the stop, not about the model
    code = script.main(["--quick", "--work", str(tmp_path / "run"), "--weights-out", str(out), "--threads", "1",
                        "--data", str(dpdd_pairs.parents[1]), "--base", "8", "--patch", "64", "--batch", "2"])
    assert code == 3
    assert not out.exists() and not (out.parent / "MODEL_CARD.md").exists()
    assert (tmp_path / "run" / "phase1" / "last.pt").is_file()  # the trained phases are kept for the rerun
