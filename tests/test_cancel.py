"""One cancel protocol: lfd.CancelToken through ``cancel=`` works with every long-running public function."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import napari_lfdeblur as lfd
from napari_lfdeblur.cancel import cancel_check


@pytest.fixture(scope="module")
def lf():
    return lfd.synthetic_lightfield(seed=3, views=5, size=64, disparity_range=(-1.0, 1.0))


def _cancelled():
    token = lfd.CancelToken()
    token.cancel()
    return token


def test_the_public_token_is_the_training_token():
    from napari_lfdeblur.training import CancelToken

    assert lfd.CancelToken is CancelToken


def test_adapter_accepts_token_event_callable_and_none():
    token = lfd.CancelToken()
    event = threading.Event()
    assert not cancel_check(token)() and not cancel_check(event)() and not cancel_check(None)()
    token.cancel()
    event.set()
    assert cancel_check(token)() and cancel_check(event)() and cancel_check(lambda: 1)()
    with pytest.raises(lfd.LFDeblurError, match="cancel must be"):
        cancel_check(42)


def test_deblur_with_a_token(one_torch_thread):
    img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    assert lfd.deblur(img, cancel=lfd.CancelToken()).shape == img.shape  # used to raise AttributeError
    from napari_lfdeblur.inference.deblur import DeblurCancelled

    with pytest.raises(DeblurCancelled):
        lfd.deblur(img, cancel=_cancelled())


def test_pairs_with_a_token(lf, tmp_path):
    pairs = lfd.make_pairs(lf, apertures=[0.5, 1.0], focus=[-0.5, 0.5], cancel=lfd.CancelToken())  # was TypeError
    assert pairs
    assert lfd.make_pairs(lf, apertures=[1.0], focus=2, cancel=_cancelled()) == []
    assert list(lfd.iter_pairs(lf, apertures=[1.0], focus=2, cancel=_cancelled())) == []
    lfd.write_pairs(pairs, tmp_path / "p", cancel=_cancelled())
    assert lfd.read_manifest(tmp_path / "p") == []
    lfd.write_pairs(pairs, tmp_path / "q", cancel=lfd.CancelToken())
    assert len(lfd.read_manifest(tmp_path / "q")) == len(pairs)


def test_refocus_and_disparity_with_a_token(lf):
    assert lfd.focal_stack(lf, [0.0, 0.5], cancel=lfd.CancelToken()).shape[0] == 2
    assert lfd.focal_stack(lf, [0.0, 0.5], cancel=_cancelled()).shape[0] == 0
    assert lfd.estimate_disparity(lf, [-1, 0, 1], cancel=_cancelled()) is None


def test_train_and_evaluate_with_a_token(tmp_path, one_torch_thread):
    result = lfd.train("synthetic", model={"base": 4}, steps=3, batch=1, patch=32, device="cpu", amp=False,
                       cancel=_cancelled())
    assert result.cancelled and result.steps == 0
    from napari_lfdeblur.training.metrics import score_model

    rng = np.random.default_rng(1)
    folder = tmp_path / "pairs"
    pairs = [lfd.Pair(rng.random((32, 32, 3)).astype(np.float32), rng.random((32, 32, 3)).astype(np.float32),
                      {"scene": "s", "index": i}) for i in range(2)]
    lfd.write_pairs(pairs, folder)
    scores = score_model(result.model, str(folder), cancel=_cancelled())
    assert scores["stopped"] and scores["n"] == 0
    ev = lfd.evaluate(str(folder), model=result.model, cancel=_cancelled())
    assert ev.cancelled
