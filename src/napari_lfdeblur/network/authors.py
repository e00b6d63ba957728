"""The authors' published DRBNet checkpoint: where it comes from, fetching it once, checking it afterwards
(docs/authors-checkpoint.md).

Everything known about the published archive is written once, below.  Nothing is downloaded at import or on
its own: only :func:`fetch_authors_checkpoint`, ``load_model("authors")`` when the file is absent (saying so
on stderr), or the Deblur widget's entry after the user confirms.
"""

from __future__ import annotations

import ftplib
import html
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import url2pathname

from ..cache import CACHE_ENV, cache_dir, cache_hint
from ..cancel import cancel_check
from ..errors import LFDeblurError, ModelError
from ..io.atomic import atomic_path
from .checkpoint import NAMED_MODELS, _package_version, load_model

__all__ = [
    "APPROX_SIZE",
    "ARCHIVE_MEMBER",
    "FILENAME",
    "LICENCE",
    "PAGE_URL",
    "URL",
    "DownloadCancelled",
    "authors_checkpoint",
    "authors_checkpoint_path",
    "fetch_authors_checkpoint",
    "is_downloaded",
    "size_text",
]

log = logging.getLogger(__name__)

# --- the published archive: everything known about it, in one place --------------------------------------------
SOURCE = "https://github.com/lingyanruan/DRBNet"  # the authors' repository; its download_ckpts.py names the file id
DRIVE_ID = "1vGImev9LdagttXE_nN1gZGVstVTRVQHt"  # Google Drive file id of their ckpts.zip
URL = f"https://drive.google.com/uc?export=download&id={DRIVE_ID}"  # direct download (Drive may ask to confirm)
PAGE_URL = f"https://drive.google.com/file/d/{DRIVE_ID}/view"  # the page a person opens in a browser
ARCHIVE_NAME = "ckpts.zip"
ARCHIVE_MEMBER = "ckpts/single/single_image_defocus_deblurring.pth"  # the one file used; ckpts/dual/ is not
FILENAME = "single_image_defocus_deblurring.pth"
# An estimate (no length is published): two float32 networks of ~11.7 M parameters (single-image, dual-pixel),
# ~47 MB each, in a zip.  The real length, when the server sends it, drives the progress bar.
APPROX_SIZE = 90_000_000
LICENCE = "AGPL-3.0"
AUTHORS_CONFIG = {"arch": "DRBNet", "base": 32, "res_blocks": 2}

URL_ENV = "LFDEBLUR_AUTHORS_URL"
_SUBDIR = "authors"
_CHUNK = 1 << 20
_TIMEOUT = 60  # s without a byte before giving up
_MAX_PAGE = 2 << 20  # bytes of a web page read to find Drive's "download anyway" form
_MAX_MEMBER = 1 << 30  # a checkpoint larger than this in the archive is not the authors'
_URL_SCHEMES = ("http", "https", "ftp", "file")  # what the downloaders below open


class DownloadCancelled(LFDeblurError):
    """Raised by :func:`fetch_authors_checkpoint` when its ``cancel`` token is set; nothing is kept."""


# --- where it lives -------------------------------------------------------------------------------------------------
def authors_checkpoint_path() -> Path:
    """Where the authors' checkpoint is (or will be) kept; it may not exist."""
    return cache_dir() / _SUBDIR / FILENAME


def _sha_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_downloaded() -> bool:
    """Whether the checkpoint is in the cache (no check of its content: see :func:`authors_checkpoint`)."""
    return authors_checkpoint_path().is_file()


def size_text() -> str:
    """The download size as people read it: 'about 90 MB'."""
    return f"about {APPROX_SIZE / 1e6:.0f} MB"


def _url(url: str | None) -> str:
    """The download address: ``url``, else ``$LFDEBLUR_AUTHORS_URL``, else the authors' link.

    Checked before anything is announced or opened, so that a value that is no address, or one without a
    host, is said as such rather than as a bare ValueError or an error read as "offline".
    """
    where = "url="
    if not url:
        url, where = os.environ.get(URL_ENV, "").strip(), f"${URL_ENV}"
        if not url:
            return URL
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        ok = scheme in _URL_SCHEMES and (parts.path.startswith("/") if scheme == "file" else bool(parts.hostname))
    except ValueError:  # e.g. a broken [IPv6] host
        ok = False
    if not ok:
        raise ModelError(
            f"{where} is {url!r}, which is not a download address: give the checkpoint archive's address as "
            "https://host/path (or http://, ftp://, file:///path/to/ckpts.zip)"
            + (", or unset it to use the authors' link" if where != "url=" else "")
        )
    return url


def manual_instructions(path: Path | None = None) -> str:
    """How to install the checkpoint by hand (offline machines)."""
    path = authors_checkpoint_path() if path is None else path
    return (
        f"To install it by hand, download {ARCHIVE_NAME} from {PAGE_URL} (linked from {SOURCE}) on a connected "
        f"machine, unzip it and copy {ARCHIVE_MEMBER} to {path} (set ${CACHE_ENV} to use another folder), or pass "
        f"the file's path instead: load_model('path/to/{FILENAME}')"
    )


# --- checking a file -----------------------------------------------------------------------------------------------
def _recorded_sha(path: Path) -> str | None:
    sha_file = _sha_path(path)
    try:
        text = sha_file.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return text[0].lower() if text else None


def _record_sha(path: Path, digest: str) -> None:
    with atomic_path(_sha_path(path), suffix=".sha256") as tmp:
        tmp.write_text(f"{digest}  {path.name}\n", encoding="ascii")


def _verify_model(path: Path, source: str) -> None:
    """Load ``path`` strictly as the authors' DRBNet (weights_only); a ModelError says why it is not."""
    try:
        net = load_model(path, device="cpu", dtype="float32")
    except ModelError as e:
        raise ModelError(f"{source} is not the authors' DRBNet checkpoint: {e}") from e
    config = dict(getattr(net, "config", {}))
    if config != AUTHORS_CONFIG:
        raise ModelError(
            f"{source} is a DRBNet of another size ({config}), not the authors' network {AUTHORS_CONFIG}"
        )


def _check_cached(path: Path) -> Path:
    """The cached file, after its sha256 check (recorded on first use when it was put there by hand)."""
    recorded = _recorded_sha(path)
    import pooch  # not at import: the GPU machines' environment has no pooch, and needs no download

    digest = pooch.file_hash(str(path))
    if recorded is None:
        _verify_model(path, str(path))
        _record_sha(path, digest)
        log.info("recorded the sha256 of %s: %s", path, digest)
        return path
    if digest != recorded:
        raise ModelError(
            f"{path} has changed since it was downloaded (sha256 {digest[:16]}..., recorded {recorded[:16]}... in "
            f"{_sha_path(path)}): it is damaged or was replaced. Delete both files and ask for it again to download "
            "a fresh copy (load_model('authors'), or the Deblur widget's authors' entry)."
        )
    return path


# --- downloading -----------------------------------------------------------------------------------------------------
class _Forms(HTMLParser):
    """The forms (action, id, inputs) and links of a web page."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "id": a.get("id", ""), "inputs": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["inputs"][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def _trusted_next(base: str, target: str) -> bool:
    """Follow a confirm page only to its own host or to Google's download hosts."""
    host = (urlsplit(target).hostname or "").lower()
    return host == (urlsplit(base).hostname or "").lower() or host.endswith((".google.com", ".googleusercontent.com"))


def _confirm_url(page: str, base: str) -> str | None:
    """The "download anyway" address on Google Drive's page for files it cannot scan, if the page has one."""
    parser = _Forms()
    try:
        parser.feed(page)
    except Exception:  # a broken page: no form to follow
        return None
    for form in sorted(parser.forms, key=lambda f: f["id"] != "download-form"):
        if form["id"] == "download-form" or "download" in form["action"]:
            target = urljoin(base, html.unescape(form["action"]))
            if form["inputs"]:
                target += ("&" if "?" in target else "?") + urlencode(form["inputs"])
            return target if _trusted_next(base, target) else None
    for href in parser.links:
        if "confirm=" in href:
            target = urljoin(base, html.unescape(href))
            return target if _trusted_next(base, target) else None
    return None


def _stop_if_asked(stop: Callable[[], bool]) -> None:
    if stop():
        raise DownloadCancelled("the download was cancelled: nothing was saved")


class _Progress:
    """The progress bar pooch's downloaders drive (``total``, ``update``, ``reset``, ``close``): it passes the
    count on as ``progress(done, total or None)``, and its ``update`` raising DownloadCancelled is the cancel."""

    def __init__(self, progress, stop: Callable[[], bool]):
        self.progress, self.stop = progress, stop
        self.total = 0  # set by the downloader: the announced length, 0 when there is none
        self.done = 0

    def update(self, n: int) -> None:
        _stop_if_asked(self.stop)
        # pooch counts whole chunks (the last one is shorter) and fills the bar with update(total) at the end
        done = min(self.done + n, self.total) if self.total else self.done + n
        if done != self.done:
            self.done = done
            if self.progress is not None:
                self.progress(done, self.total or None)

    def reset(self) -> None:  # the count is kept: the final update(total) is capped to it
        pass

    def close(self) -> None:
        pass


def _copier(bar: _Progress):
    """A pooch downloader for ``file:///`` addresses (offline mirrors, tests), with the same progress and cancel."""

    def copy(url: str, output_file: str, _pooch) -> None:
        source = Path(url2pathname(urlsplit(url).path))
        try:
            src = open(source, "rb")
        except OSError as e:
            raise ModelError(f"cannot read {source} ({e.strerror or e}), given as {url}. "
                             + manual_instructions()) from e
        with src, open(output_file, "wb") as dst:
            bar.total = os.fstat(src.fileno()).st_size
            for block in iter(lambda: src.read(_CHUNK), b""):
                dst.write(block)
                bar.update(len(block))

    return copy


def _downloader(url: str, bar: _Progress):
    import pooch

    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _copier(bar)
    if scheme == "ftp":  # pooch's FTP downloader draws only its own bar: no progress, cancel between files
        return pooch.FTPDownloader(timeout=_TIMEOUT, chunk_size=_CHUNK)
    return pooch.HTTPDownloader(progressbar=bar, chunk_size=_CHUNK, timeout=_TIMEOUT,
                                headers={"User-Agent": f"napari-lfdeblur/{_package_version()}"})


@contextmanager
def _quiet_pooch():
    """pooch logs each download and advises pinning its hash: the callers say what happens in their own words."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _retrieve(url: str, folder: Path, progress, stop: Callable[[], bool]) -> Path:
    """``url`` downloaded by pooch as ``folder/ARCHIVE_NAME`` (written to a temporary file there, then moved)."""
    import pooch
    import requests

    _stop_if_asked(stop)
    bar = _Progress(progress, stop)
    try:
        with _quiet_pooch():
            got = pooch.retrieve(url, None, fname=ARCHIVE_NAME, path=folder, downloader=_downloader(url, bar))
    except requests.exceptions.ChunkedEncodingError as e:  # the connection closed before the announced length
        raise ModelError(f"the download from {url} stopped after {bar.done:,} of {bar.total:,} bytes; "
                         "nothing was saved") from e
    return Path(got)


def _is_page(path: Path) -> bool:
    """A web page, not an archive or a torch file (both begin with binary bytes)."""
    with open(path, "rb") as fh:
        return fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _download_archive(url: str, folder: Path, progress, stop: Callable[[], bool]) -> Path:
    """The archive downloaded into ``folder``, past Google Drive's confirm page when it shows one."""
    nxt = url
    for _ in range(3):
        archive = _retrieve(nxt, folder, progress, stop)
        if not _is_page(archive):
            return archive
        with open(archive, "rb") as fh:
            page = fh.read(_MAX_PAGE).decode("utf-8", "replace")
        archive.unlink()
        confirm = _confirm_url(page, nxt)
        if confirm is None:
            break
        nxt = confirm
    raise ModelError(
        f"{url} sent a web page instead of the checkpoint archive (Google Drive does this when the file's daily "
        "download quota is used up, or when it moved); nothing was saved. Try again later, or install it by hand."
    )


def _reason(e: Exception) -> str:
    """The cause as people read it ("[Errno 111] Connection refused"), without requests' and urllib3's wrapping."""
    text = str(e)
    found = re.search(r"\[Errno [^\]]+\][^'\")]*", text)
    return found.group(0).strip() if found else text


def _fetch_into(final: Path, url: str, progress, stop: Callable[[], bool]) -> str:
    """Download, take out, load-check and move the checkpoint to ``final``; its sha256.  Errors say what to do."""
    import pooch
    import requests

    # requests' errors (http, https), ftplib's and the socket's own; an OSError that is none of these is the disk's
    network_errors = (requests.exceptions.RequestException, ftplib.Error, EOFError, ConnectionError, TimeoutError,
                      socket.gaierror)
    try:
        with tempfile.TemporaryDirectory(prefix=".download.", dir=final.parent) as folder:
            archive = _download_archive(url, Path(folder), progress, stop)
            with atomic_path(final) as candidate:
                _extract(archive, candidate, url)
                _verify_model(candidate, f"the file downloaded from {url}")
                return pooch.file_hash(str(candidate))
    except requests.exceptions.HTTPError as e:
        answer = f"HTTP {e.response.status_code} ({e.response.reason})" if e.response is not None else str(e)
        raise ModelError(
            f"could not download the authors' DRBNet checkpoint: {url} answered {answer}. "
            + manual_instructions(final)
        ) from e
    except network_errors as e:
        raise ModelError(
            f"could not download the authors' DRBNet checkpoint from {url} ({_reason(e)}): this machine seems "
            "offline, or the address is blocked. " + manual_instructions(final)
        ) from e
    except LFDeblurError:
        raise
    except OSError as e:  # the disk, not the network
        raise ModelError(f"could not save the download in {final.parent} ({e}): " + cache_hint()) from e


def _extract(archive: Path, out: Path, url: str) -> None:
    """Write the single-image checkpoint from ``archive`` to ``out`` (a bare .pth is taken as it is)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if not i.is_dir() and Path(i.filename).name == FILENAME]
            if members:
                member = min(members, key=lambda i: (i.filename != ARCHIVE_MEMBER, len(i.filename)))
                if member.file_size > _MAX_MEMBER:
                    raise ModelError(f"{member.filename} in the archive from {url} is too large to be the checkpoint")
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                return
            names = zf.namelist()
            if not any(n.endswith("data.pkl") for n in names):  # a torch file is a zip too: take it whole
                shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
                raise ModelError(
                    f"the archive from {url} has no {FILENAME} (expected {ARCHIVE_MEMBER}; "
                    f"it holds {shown or 'nothing'})"
                )
    shutil.copyfile(archive, out)


def fetch_authors_checkpoint(progress: Callable[[int, int | None], None] | None = None, cancel=None, *,
                             url: str | None = None, force: bool = False) -> Path:
    """Download the authors' DRBNet checkpoint into the cache (once) and return its path.

    When the file is already there (and ``force`` is false), its sha256 is checked and its path returned.
    Otherwise pooch downloads the archive at ``url`` (default: ``$LFDEBLUR_AUTHORS_URL``, else the authors'
    link) to a temporary folder in the cache; the single-image checkpoint is taken out of it, loaded strictly
    as the authors' DRBNet with ``weights_only=True``, moved into place and its sha256 recorded (the authors
    publish none).  A failure leaves nothing in the cache.

    ``progress(done_bytes, total_bytes or None)`` is called as bytes arrive;
    ``cancel`` (a :class:`~napari_lfdeblur.CancelToken` or a function returning True) stops the download
    with :class:`~napari_lfdeblur.network.authors.DownloadCancelled`.  Network failures raise a ModelError that
    says how to install the file by hand.
    """
    stop = cancel_check(cancel, where="fetch_authors_checkpoint")
    final = authors_checkpoint_path()
    if final.is_file() and not force:
        return _check_cached(final)
    url = _url(url)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot write to the cache folder {final.parent} ({e}): " + cache_hint()) from e
    digest = _fetch_into(final, url, progress, stop)
    _record_sha(final, digest)
    log.info("downloaded the authors' DRBNet checkpoint to %s (sha256 %s)", final, digest)
    return final


def authors_checkpoint(download: bool = True) -> Path:
    """The path of the authors' checkpoint, checked; downloaded first when absent and ``download`` is true.

    What ``load_model("authors")`` uses: a script asking for the authors' model asks for the download, which
    is announced on stderr (size, licence) with a progress bar.  With ``download=False`` an absent file is a
    ModelError saying how to get it.
    """
    path = authors_checkpoint_path()
    if path.is_file():
        return _check_cached(path)
    if not download:
        raise ModelError(f"the authors' DRBNet checkpoint is not downloaded yet ({path}). " + manual_instructions(path))
    url = _url(None)
    print(
        f"napari-lfdeblur: downloading the authors' DRBNet checkpoint once ({size_text()}, {LICENCE}-licensed "
        f"weights by Ruan et al.) from {url} into {path.parent}",
        file=sys.stderr,
    )
    from tqdm import tqdm

    with tqdm(total=None, desc="authors' DRBNet", unit="B", unit_scale=True, disable=None, leave=False) as bar:

        def progress(done, total):
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return fetch_authors_checkpoint(progress, url=url)


# load_model("authors"): the cached file, sha256-checked; fetched once when absent
NAMED_MODELS["authors"] = authors_checkpoint
