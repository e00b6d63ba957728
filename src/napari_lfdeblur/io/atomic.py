"""Atomic writes and writability checks: every file and folder the package writes goes through here.

A result is written under a temporary name beside its final one (private while written: ``mkstemp``,
``mkdtemp``) and renamed into place when complete, with the permissions of a normal new file.  Errors of the
place written to (read-only or full disk, a file where a folder should be, ...) are raised as
:class:`~napari_lfdeblur.errors.OutputError` saying what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeGuard

from ..errors import OutputError

__all__ = [
    "atomic_dir",
    "atomic_path",
    "check_writable_file",
    "is_place_error",
    "link_or_copy",
    "output_error",
    "writable_folder",
    "writing_failed",
]

# errors of the place written to (not of the data): reported as OutputError with what to do
_PLACE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST,
                 errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.ENOENT}


def output_error(path, e: OSError, what: str = "") -> OutputError:
    """An :class:`OutputError` saying that ``path`` could not be written, why, and what to try."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space or write elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a folder you can write to"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file stands where a folder is needed: choose another path"
    else:
        hint = "choose another path"
    # which file met a full disk says nothing (and may be a hidden temporary one): only the place is named
    where = f" ({e.filename})" if getattr(e, "filename", None) and str(e.filename) != str(path) and \
        e.errno not in (errno.ENOSPC, errno.EDQUOT) else ""
    err = OutputError(f"cannot write {what + ' ' if what else ''}{path}: {reason}{where}; {hint}")
    err.errno, err.strerror, err.filename = e.errno, e.strerror, str(path)
    return err


def is_place_error(e: BaseException) -> TypeGuard[OSError]:
    """Whether ``e`` is an OSError about the place written to (permissions, full disk, ...), not a bug."""
    return isinstance(e, OSError) and not isinstance(e, OutputError) and e.errno in _PLACE_ERRNOS


def writing_failed(e: BaseException, tmp) -> TypeGuard[OSError]:
    """Whether ``e``, raised while writing ``tmp``, is the disk's doing (full, read-only) rather than the data's."""
    return is_place_error(e) and (e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or (
        e.filename is not None and os.path.abspath(str(e.filename)) == os.path.abspath(str(tmp))))


def _failed_inside(e: BaseException, tmp) -> TypeGuard[OSError]:
    """Whether ``e`` is a place error on ``tmp`` or on a file inside it (a folder being written)."""
    return writing_failed(e, tmp) or (is_place_error(e) and e.filename is not None
                                      and str(e.filename).startswith(str(tmp)))


# numpy's ``tofile`` (which tifffile writes arrays with) reports a short write without an errno
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def _place_error_behind(e: BaseException) -> BaseException:
    """The error of the place written to behind ``e``, else ``e``.

    Libraries wrap the disk's error in their own: torch's zip writer raises ``RuntimeError("[enforce fail at
    inline_container.cc] ... unexpected pos")`` while the file's ENOSPC is only its context, and numpy's short
    write ("12288 requested and 1912 written") has no errno at all: the disk took part of the data and refused the
    rest, which is a full disk (or a file larger than the file system holds), so it is read as ENOSPC."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OutputError):  # already says what to do
            return e
        if is_place_error(cur):
            return cur
        if isinstance(cur, OSError) and cur.errno is None and _SHORT_WRITE.fullmatch(str(cur)):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        cur = cur.__cause__ or cur.__context__
    return e


# ------------------------------------------------------------------ permissions
def _umask() -> int:
    """The process umask.  On Linux it is read from /proc without changing it; elsewhere ``os.umask`` is the
    only way to learn it, which sets it for a moment (for every thread) and puts it back."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _usual_mode(path) -> None:
    """Give a temporary (private) file or folder the permissions a normal new one gets."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_umask())


# ------------------------------------------------------------------ checks
def check_writable_file(path, what: str = "", folder_ok: bool = False) -> Path:
    """Raise :class:`OutputError` now if ``path`` cannot be written (its missing folders could not be made), by
    trying a temporary file in its nearest existing folder.  ``folder_ok``: ``path`` may be an existing folder
    (an OME-Zarr output is one).  Lets callers refuse before hours of work instead of failing at the end."""
    path = Path(path).expanduser()
    if path.is_dir() and not folder_ok:
        raise OutputError(f"cannot write {what + ' ' if what else ''}{path}: it is a folder; give a file name")
    place = path.parent
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    try:
        if not place.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(place))
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".check", dir=place):
            pass
    except OSError as e:
        raise output_error(path, e, what) from e
    return path


def writable_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before long work starts; raises
    :class:`OutputError` (what is wrong and what to do)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write the {what} {folder}: it is a file; choose a folder (a new or an existing one)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(folder, e, f"the {what}") from e
    check_writable_file(folder / ".write-check", f"the {what}")
    return folder


# ------------------------------------------------------------------ writing
@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``final``; move it into place (``os.replace``) only on success, else remove
    it.  ``suffix``: the temporary file's suffix (default ``final``'s), for writers that choose the format by it.
    """
    final = Path(final)
    suffix = final.suffix if suffix is None else suffix
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".part" + suffix, dir=final.parent)
    except OSError as e:  # a read-only or full disk, a file where the folder should be, ...
        raise output_error(final, e) from e
    os.close(fd)
    _usual_mode(tmp)
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise output_error(final, e) from e
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        place = _place_error_behind(e)
        if writing_failed(place, tmp):
            raise output_error(final, place) from e
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, check_old: Callable[[Path], None] | None = None):
    """Yield a temporary folder beside ``final``; rename it to ``final`` only on success (replacing it).

    ``check_old(final)``, when given, is called while something exists at ``final``, before the work and again
    just before replacing it (it may have changed meanwhile), and raises to refuse the replacement.  What is
    replaced is moved aside first and put back if the rename fails: ``final`` is always the new folder or the
    old one.  Anything still writing into the temporary folder must have stopped when the body exits: the
    folder is removed then, and a late write would re-create it."""
    final = Path(final)
    if check_old is not None and os.path.lexists(final):
        check_old(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    except OSError as e:  # a read-only or full disk, a file where the folder should be, ...
        raise output_error(final, e) from e
    try:
        yield tmp
        _usual_mode(tmp)
        if check_old is not None and os.path.lexists(final):
            check_old(final)
        _replace_dir(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        place = _place_error_behind(e)
        if _failed_inside(place, tmp):
            raise output_error(final, place) from e
        raise


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename the folder ``tmp`` to ``final``; whatever ``final`` was (folder, file, link) is moved aside into a
    hidden ``.old`` folder first, removed once the new one is in place, and put back if the rename failed."""
    old = None
    try:
        if os.path.lexists(final):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
    except OSError as e:
        err = output_error(final, e)
        if old is not None and os.path.lexists(old / final.name):
            try:
                os.replace(old / final.name, final)
            except OSError:  # kept, and said where: never removed with the .old folder
                err = OutputError(f"{err}; the previous {final.name} is kept in {old}")
                old = None
        raise err from e
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` a hard link to ``src`` (a copy where the file system cannot link), atomically."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        if is_place_error(e):
            raise output_error(dst, e) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dst
