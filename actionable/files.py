"""Output files written whole or not at all: a temporary file in the same folder, flushed, fsynced, renamed.

A run killed mid-write (SIGINT, SIGKILL, a full disk) never leaves a file at the final path that looks
complete but is not: the final path holds either the previous file or the new one, whole. Two runs writing
the same path are kept apart by an advisory lock on ``PATH.lock`` (``fcntl.flock``): the kernel drops it
when its holder dies, so a lock left by a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from actionable.errors import ConfigError

__all__ = [
    "acquire",
    "atomic_folder",
    "atomic_path",
    "atomic_write",
    "check_target",
    "lock_path",
    "locked",
    "release",
]

_held: dict[Path, int] = {}  # lock files this process holds: path -> open descriptor


def check_target(path: str | Path, *, folder: bool = False) -> None:
    """``ConfigError`` unless ``path`` is absent or a plain file (a real folder when ``folder``).

    The writers rename a new file over the final path, so a device (``/dev/null`` as root), a pipe, a
    socket or a symbolic link there would be replaced, not written through: refuse them before any work.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _unwritable(path, exc) from None
    if stat.S_ISLNK(mode):
        what = "a symbolic link"
    elif (folder and stat.S_ISDIR(mode)) or (not folder and stat.S_ISREG(mode)):
        return
    elif stat.S_ISDIR(mode):
        what = "a folder"
    elif stat.S_ISREG(mode):
        what = "a file, not a folder"
    else:
        what = "a device, pipe or socket, not a plain file"
    raise ConfigError(
        f"{path}: is {what}; give the path of a plain {'folder' if folder else 'file'} to write."
    )


def lock_path(path: str | Path) -> Path:
    """The lock file that guards ``path``: ``PATH.lock`` next to it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _key(path: str | Path) -> Path:
    return Path(os.path.abspath(path))


def acquire(path: str | Path) -> bool:
    """Take the lock on ``path`` for this process; False if this process already held it.

    ``ConfigError`` when another live process holds it (its pid is named). The lock is re-checked against
    the file on disk after taking it, so a holder that removes the lock file as it ends cannot let two
    later runs both believe they hold it.
    """
    key = _key(path)
    if key in _held:
        return False
    lock = lock_path(key)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link planted at PATH.lock: never truncate what it points at
                raise ConfigError(
                    f"{path}: its lock file {lock} is a symbolic link; remove it or choose another path."
                ) from None
            raise _unwritable(path, exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError(
                f"{path}: its lock file {lock} is not a plain file; remove it or choose another path."
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise ConfigError(
                f"{path}: another run{f' (pid {holder})' if holder else ''} is writing this file now "
                f"(lock {lock}); wait for it to finish or choose another output path."
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the file we locked was removed by its previous holder: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = fd
    return True


def release(path: str | Path) -> None:
    """Drop this process's lock on ``path`` and remove the lock file (nothing if not held)."""
    fd = _held.pop(_key(path), None)
    if fd is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock_path(_key(path)))
    os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the lock on ``path`` for the block (re-entrant within one process)."""
    mine = acquire(path)
    try:
        yield
    finally:
        if mine:
            release(path)


def _unwritable(path: str | Path, exc: OSError) -> ConfigError:
    reason = "no space left on device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
    return ConfigError(
        f"{path}: cannot write it ({reason}); nothing was written there. Free space or choose another "
        "output path."
    )


def _mode_for(path: Path) -> int:
    """The permissions the final file gets: those of the file it replaces, else the umask's default."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path (same folder, same suffix) to write; on success it is fsynced and renamed to ``path``.

    For writers that take a path (matplotlib's ``savefig``). On any failure the temporary file is removed
    and the final path is left as it was; an ``OSError`` (a full disk) becomes ``ConfigError``.
    """
    path = Path(path)
    folder = path.parent
    check_target(path)
    with locked(path):
        temp: Path | None = None
        try:
            # named before it is made, inside the try: an interrupt at any point leaves nothing behind
            # (with mkstemp, one landing before the cleanup's try leaked the file it had just made)
            temp = folder / f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}"
            try:
                _make(temp)
            except FileExistsError:  # another file by that name (1 in 2**64): never remove it
                temp = None
                raise
            yield temp
            os.chmod(temp, _mode_for(path))
            fd = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            _sync_folder(folder)
        except OSError as exc:
            _remove(temp)
            raise _unwritable(path, exc) from None
        except BaseException:
            _remove(temp)
            raise


def _make(temp: Path) -> None:
    """Create ``temp`` empty (never through a link, never over an existing file)."""
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))


@contextlib.contextmanager
def atomic_write(path: str | Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """An open file (text UTF-8, or ``binary``) that replaces ``path`` whole when the block ends normally."""
    with atomic_path(path) as temp:
        handle = temp.open("wb") if binary else temp.open("w", encoding="utf-8", newline="\n")
        try:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            handle.close()


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder next to ``path`` to fill; on success its files land in ``path``.

    A new folder is renamed into place whole. Into an existing folder each file is renamed over its old
    version (other files there are kept), so no file is ever seen half written.
    """
    path = Path(path)
    folder = path.parent
    check_target(path, folder=True)
    with locked(path):
        try:
            temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder))
        except OSError as exc:
            raise _unwritable(path, exc) from None
        try:
            yield temp
            for item in temp.iterdir():
                fd = os.open(item, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            if path.is_dir():
                for item in temp.iterdir():
                    os.replace(item, path / item.name)
                _sync_folder(path)
                temp.rmdir()
            else:
                os.chmod(temp, 0o777 & ~_umask())
                os.replace(temp, path)
            _sync_folder(folder)
        except OSError as exc:
            shutil.rmtree(temp, ignore_errors=True)
            raise _unwritable(path, exc) from None
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove(temp: Path | None) -> None:
    if temp is None:
        return
    with contextlib.suppress(OSError):
        temp.unlink()
