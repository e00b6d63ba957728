"""The authors' published checkpoint: fetched once from a (local, stand-in) server, checked, offline afterwards.

A local HTTP server on 127.0.0.1 serves a stand-in of the authors' archive
(``ckpts.zip`` holding ``ckpts/single/single_image_defocus_deblurring.pth``, a
bare DRBNet state dict with random weights, and ``ckpts/dual/...``), Google
Drive's "download anyway" page, and broken answers; the cache is a temporary
folder (``$LFDEBLUR_CACHE``).  Nothing here reaches the internet.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from napari_lfdeblur import cache as package_cache
from napari_lfdeblur.errors import ModelError
from napari_lfdeblur.network import authors
from napari_lfdeblur.network.checkpoint import load_model
from napari_lfdeblur.network.drbnet import DRBNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SRC = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()) / "src"


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def stand_in():
    """(archive bytes, the single-image state dict, its file's bytes): the authors' layout, random weights."""
    torch.manual_seed(0)
    sd = DRBNet().state_dict()  # the authors' names and shapes (tests/test_checkpoint.py checks them on the spec)
    pth = _torch_bytes(sd)
    archive = _zip({
        authors.ARCHIVE_MEMBER: pth,
        "ckpts/dual/dual_images_defocus_deblurring.pth": _torch_bytes({"conv1_1.0.weight": torch.zeros(32, 6, 3, 3)}),
    })
    return archive, sd, pth


class _Server:
    """A local HTTP server: path (without query) -> (content type, body[, announced length]); it counts requests."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404, "not here")
                    return
                ctype, body, *length = route
                body = body(self.path) if callable(body) else body
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(length[0] if length else len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except ConnectionError:  # the client cancelled mid-download: what those tests do
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
        self.thread = None

    def downloads(self) -> int:
        return sum(1 for p in self.requests if not p.startswith("/uc"))


DRIVE_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="/download" method="get">
<input type="submit" id="uc-download-link" value="Download anyway"/>
<input type="hidden" name="id" value="FILEID"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0f-1e">
</form></body></html>"""

QUOTA_PAGE = "<html><body><p>Too many users have viewed or downloaded this file recently.</p></body></html>"


@pytest.fixture
def server(stand_in):
    archive = stand_in[0]
    other = _zip({authors.ARCHIVE_MEMBER: _torch_bytes(DRBNet(base=4).state_dict())})
    s = _Server({
        "/ckpts.zip": ("application/zip", archive),
        "/uc": ("text/html; charset=utf-8", DRIVE_PAGE.encode()),
        "/download": ("application/octet-stream", lambda path: archive if "confirm=t" in path else b"no"),
        "/quota": ("text/html", QUOTA_PAGE.encode()),
        "/page-as-binary": ("application/octet-stream", QUOTA_PAGE.encode()),
        "/no-member.zip": ("application/zip", _zip({"ckpts/README.txt": b"nothing"})),
        "/other-size.zip": ("application/zip", other),
        "/truncated.zip": ("application/zip", archive[: len(archive) // 2], len(archive)),
    })
    yield s
    s.stop()


@pytest.fixture
def dead_url():
    """An address nothing listens on: what an offline machine sees."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ckpts.zip"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(package_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(authors.URL_ENV, raising=False)
    return tmp_path / "cache"


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _same_weights(net, sd):
    got = net.state_dict()
    assert list(got) == list(sd)
    assert all(torch.equal(got[k].float().contiguous(), v) for k, v in sd.items())


# --------------------------------------------------------------------------- where and what
def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv(package_cache.CACHE_ENV, str(tmp_path / "c"))
    assert authors.authors_checkpoint_path() == tmp_path / "c" / "authors" / authors.FILENAME
    monkeypatch.delenv(package_cache.CACHE_ENV)
    from platformdirs import user_cache_dir

    assert package_cache.cache_dir() == Path(user_cache_dir("napari-lfdeblur", appauthor=False))
    assert authors.URL.startswith("https://drive.google.com/") and authors.DRIVE_ID in authors.URL
    assert authors.ARCHIVE_MEMBER.endswith("/" + authors.FILENAME)
    assert authors.size_text() == "about 90 MB"


# --------------------------------------------------------------------------- the whole path
def test_first_load_downloads_records_sha_then_works_offline(server, stand_in, cache, monkeypatch, capfd, dead_url):
    archive, sd, pth = stand_in
    monkeypatch.setenv(authors.URL_ENV, server.url + "/ckpts.zip")
    assert not authors.is_downloaded()

    net = load_model("authors", device="cpu", dtype="float32")
    assert isinstance(net, DRBNet) and net.config == authors.AUTHORS_CONFIG
    _same_weights(net, sd)
    path = authors.authors_checkpoint_path()
    assert net.record.source == str(path)
    assert path.read_bytes() == pth  # the single-image file, taken out of the archive
    digest = hashlib.sha256(pth).hexdigest()
    assert (cache / "authors" / (authors.FILENAME + ".sha256")).read_text().split() == [digest, authors.FILENAME]
    assert _files(cache) == [authors.FILENAME, authors.FILENAME + ".sha256"]  # no archive or temp file left
    assert server.downloads() == 1
    err = capfd.readouterr().err
    assert "downloading the authors' DRBNet checkpoint" in err and "about 90 MB" in err and "AGPL-3.0" in err
    assert "known_hash" not in err and "Downloading data from" not in err  # pooch's own log lines are kept quiet

    # offline afterwards: the server is gone, and nothing is asked of it
    server.stop()
    monkeypatch.setenv(authors.URL_ENV, dead_url)
    again = load_model("authors", device="cpu", dtype="float32")
    _same_weights(again, sd)
    assert "downloading" not in capfd.readouterr().err


def test_fetch_follows_drive_confirm_page_and_reports_progress(server, stand_in, cache):
    archive, _, pth = stand_in
    seen = []
    url = server.url + "/uc?export=download&id=X"
    path = authors.fetch_authors_checkpoint(lambda d, t: seen.append((d, t)), url=url)
    assert path.read_bytes() == pth
    assert [p.split("?")[0] for p in server.requests] == ["/uc", "/download"]
    assert "confirm=t" in server.requests[1] and "uuid=0f-1e" in server.requests[1]
    assert seen[-1] == (len(archive), len(archive))
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    # already there: checked, not downloaded again
    assert authors.fetch_authors_checkpoint(url=server.url + "/ckpts.zip") == path
    assert len(server.requests) == 2


def test_force_downloads_again(server, cache):
    url = server.url + "/ckpts.zip"
    authors.fetch_authors_checkpoint(url=url)
    authors.fetch_authors_checkpoint(url=url, force=True)
    assert server.downloads() == 2 and len(_files(cache)) == 2


def test_tampered_cached_file_is_refused(server, cache):
    path = authors.fetch_authors_checkpoint(url=server.url + "/ckpts.zip")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="has changed since it was downloaded") as e:
        load_model("authors", device="cpu")
    assert str(path) in str(e.value) and "Delete both files" in str(e.value)
    assert server.downloads() == 1  # refused, not silently replaced


def test_a_file_url_serves_as_a_mirror_and_a_bad_address_is_refused_first(stand_in, cache, monkeypatch, tmp_path):
    """$LFDEBLUR_AUTHORS_URL: a file:/// archive (an offline mirror) works; a value that is no address is a
    one-line ModelError naming the variable before anything is announced or written (it was urllib's bare
    ValueError, or for ftp:/x an "offline" message)."""
    for bad in ("not a url", "ftp:/x"):
        monkeypatch.setenv(authors.URL_ENV, bad)
        with pytest.raises(ModelError, match=rf"^\$LFDEBLUR_AUTHORS_URL is '{bad}', which is not a download address"):
            load_model("authors", device="cpu")
        assert _files(cache) == []
    archive = tmp_path / "mirror" / "ckpts.zip"
    archive.parent.mkdir()
    archive.write_bytes(stand_in[0])
    monkeypatch.setenv(authors.URL_ENV, archive.as_uri())
    _same_weights(load_model("authors", device="cpu", dtype="float32"), stand_in[1])


def test_offline_without_cache_says_where_to_get_it(cache, monkeypatch, dead_url, capfd):
    monkeypatch.setenv(authors.URL_ENV, dead_url)
    with pytest.raises(ModelError) as e:
        load_model("authors", device="cpu")
    msg = str(e.value)
    path = authors.authors_checkpoint_path()
    assert dead_url in msg and str(path) in msg and authors.PAGE_URL in msg and authors.ARCHIVE_MEMBER in msg
    assert "offline" in msg
    assert _files(cache) == []


def test_not_downloaded_and_download_false(cache):
    with pytest.raises(ModelError, match="not downloaded yet") as e:
        authors.authors_checkpoint(download=False)
    assert str(authors.authors_checkpoint_path()) in str(e.value)


def test_file_put_there_by_hand_is_checked_and_recorded(stand_in, cache, monkeypatch, dead_url):
    _, sd, pth = stand_in
    monkeypatch.setenv(authors.URL_ENV, dead_url)
    path = authors.authors_checkpoint_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(pth)
    _same_weights(load_model("authors", device="cpu", dtype="float32"), sd)
    assert authors._recorded_sha(path) == hashlib.sha256(pth).hexdigest()
    # a wrong file put there by hand is refused, and not recorded
    authors._sha_path(path).unlink()
    path.write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(ModelError, match="is not the authors' DRBNet checkpoint"):
        load_model("authors", device="cpu")
    assert not authors._sha_path(path).exists()


@pytest.mark.parametrize(
    "route, message",
    [
        ("/quota", "sent a web page instead of the checkpoint archive"),
        ("/page-as-binary", "sent a web page instead of the checkpoint archive"),  # told by its bytes
        ("/no-member.zip", "has no single_image_defocus_deblurring.pth"),
        ("/other-size.zip", "of another size"),
        ("/truncated.zip", "stopped after"),
        ("/missing.zip", "HTTP 404"),
    ],
)
def test_bad_downloads_are_refused_and_leave_nothing(server, cache, route, message):
    with pytest.raises(ModelError, match=message):
        authors.fetch_authors_checkpoint(url=server.url + route)
    assert _files(cache) == []
    assert not authors.is_downloaded()


def test_cancel_leaves_nothing(server, cache):
    from napari_lfdeblur.training.events import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(authors.DownloadCancelled, match="nothing was saved"):
        authors.fetch_authors_checkpoint(cancel=token, url=server.url + "/ckpts.zip")
    assert _files(cache) == [] and server.requests == []


@pytest.mark.parametrize("where", ["http", "file"])
def test_cancel_during_the_download_leaves_no_part_file(server, stand_in, cache, tmp_path, where):
    """Cancelled after the first chunk: pooch's temporary file and our temporary folder are both gone."""
    from napari_lfdeblur.cancel import CancelToken

    if where == "file":
        mirror = tmp_path / "ckpts.zip"
        mirror.write_bytes(stand_in[0])
        url = mirror.as_uri()
    else:
        url = server.url + "/ckpts.zip"
    token, seen = CancelToken(), []

    def progress(done, total):
        seen.append((done, total))
        token.cancel()

    with pytest.raises(authors.DownloadCancelled, match="nothing was saved"):
        authors.fetch_authors_checkpoint(progress, token, url=url)
    assert seen == [(authors._CHUNK, len(stand_in[0]))]  # one chunk arrived, then it stopped
    assert _files(cache) == [] and list((cache / "authors").iterdir()) == []


def test_a_missing_file_url_says_so(cache, tmp_path):
    with pytest.raises(ModelError, match="cannot read .*missing.zip") as e:
        authors.fetch_authors_checkpoint(url=(tmp_path / "missing.zip").as_uri())
    assert authors.ARCHIVE_MEMBER in str(e.value)  # and how to install it by hand
    assert _files(cache) == []


def test_confirm_page_only_followed_to_its_host_or_google():
    page = DRIVE_PAGE.replace('action="/download"', 'action="https://evil.example/download"')
    assert authors._confirm_url(page, "https://drive.google.com/uc?id=X") is None
    page = DRIVE_PAGE.replace('action="/download"', 'action="https://drive.usercontent.google.com/download"')
    nxt = authors._confirm_url(page, "https://drive.google.com/uc?id=X")
    assert nxt.startswith("https://drive.usercontent.google.com/download?id=FILEID&export=download&confirm=t")


def test_deblur_with_authors_loads_once(server, cache, monkeypatch):
    import numpy as np

    from napari_lfdeblur.inference.models import _model_cache, cached_model, clear_model_cache

    monkeypatch.setenv(authors.URL_ENV, server.url + "/ckpts.zip")
    clear_model_cache()
    try:
        a = cached_model("authors", device="cpu", dtype="float32")
        assert cached_model("authors", device="cpu", dtype="float32") is a and len(_model_cache) == 1
        from napari_lfdeblur import deblur

        out = deblur(np.zeros((16, 16, 3), np.uint8), model="authors", device="cpu", dtype="float32")
        assert out.shape == (16, 16, 3) and server.downloads() == 1
    finally:
        clear_model_cache()


# --------------------------------------------------------------------------- nothing on its own
def test_nothing_downloads_at_import(server, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SRC), LFDEBLUR_CACHE=str(tmp_path / "c"),
               LFDEBLUR_AUTHORS_URL=server.url + "/ckpts.zip")
    code = (
        "import sys, napari_lfdeblur\n"
        "assert 'torch' not in sys.modules\n"
        "import napari_lfdeblur.network.authors, napari_lfdeblur._napari._models as m\n"
        "assert m.AUTHORS in m.deblur_model_choices() and m.AUTHORS not in m.model_choices()\n"
        "assert not m.authors_downloaded()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert server.requests == [] and not (tmp_path / "c").exists()


def test_widget_choice_needs_the_download_first(cache):
    from napari_lfdeblur._napari._models import AUTHORS, resolve_choice
    from napari_lfdeblur.errors import LFDeblurError

    with pytest.raises(LFDeblurError, match="not downloaded yet"):
        resolve_choice(AUTHORS, None)


# --------------------------------------------------------------------------- the Deblur widget's entry
@pytest.mark.gui
def test_widget_entry_asks_then_downloads_in_a_worker(server, stand_in, cache, monkeypatch, make_napari_viewer, qtbot):
    import numpy as np

    from napari_lfdeblur._napari import _models
    from napari_lfdeblur._napari._models import AUTHORS, DEFAULT
    monkeypatch.setenv(authors.URL_ENV, server.url + "/ckpts.zip")
    answers, asked = [False, True], []

    def confirm(parent=None):
        asked.append(parent)
        return answers.pop(0)

    monkeypatch.setattr(_models, "confirm_authors_download", confirm)
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Deblur")  # Plugins › Light-field deblurring
    assert AUTHORS in w.model.choices and w.model.value == DEFAULT
    assert server.requests == [] and _files(cache) == []  # creating the widget downloads nothing

    w.model.value = AUTHORS  # declined: back to the default, nothing fetched
    assert asked == [w.native] and w.model.value == DEFAULT
    assert "not downloaded" in w.status.value and server.requests == []

    w.model.value = AUTHORS  # accepted: fetched in a worker, with progress
    qtbot.waitUntil(lambda: "ready" in w.status.value, timeout=60_000)
    qtbot.waitUntil(lambda: w.run_button.enabled, timeout=10_000)
    assert server.downloads() == 1 and authors.is_downloaded()
    assert w.progress.value == w.progress.max > 0
    assert w.model.value == AUTHORS

    # chosen again once cached: no question, no download; and it deblurs
    w.model.value = DEFAULT
    w.model.value = AUTHORS
    assert len(asked) == 2 and server.downloads() == 1
    w.layer.value = viewer.add_image(np.full((32, 40, 3), 128, np.uint8), name="photo", rgb=True)
    w.device.value = "cpu"
    w.preview()
    qtbot.waitUntil(lambda: "photo deblurred (preview)" in viewer.layers, timeout=60_000)


@pytest.mark.gui
def test_confirmation_shows_size_licence_and_place(cache, monkeypatch):
    from qtpy.QtWidgets import QMessageBox

    from napari_lfdeblur._napari._models import confirm_authors_download

    asked = []

    def question(parent, title, text, buttons, default):
        asked.append((title, text, default))
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    assert confirm_authors_download(None) is False
    (title, text, default), = asked
    assert "about 90 MB" in text and "AGPL-3.0" in text and str(authors.authors_checkpoint_path().parent) in text
    assert default == QMessageBox.StandardButton.No  # Enter does not download
