"""Every file trtbench writes, moves or deletes, opened relative to a directory it verified.

A root (a run directory, the engine cache) is opened once, as the user named it; each name below it is
opened relative to that descriptor without following a symbolic link (O_NOFOLLOW, dir_fd), so a link
planted inside, before or during a run, can redirect neither a write nor a delete outside it. What
trtbench expects to be a regular file is refused as anything else (a link, a FIFO, a device, a directory)
in one line, and every read is bounded. A write never leaves half a file: an atomic write renames a
complete fsynced copy, an append that fails is cut back to where it began. Disk trouble (full, read-only,
over quota, an I/O error) is a DiskError naming the path; `keeping` adds what is still intact.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from trtbench.errors import DiskError, SpecError, StoreError

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO})
MAX_READ = 256 << 20  # a results.jsonl of ~100,000 records; any single file trtbench reads is smaller
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: opening a FIFO never waits for a peer


def describe(mode: int) -> str:
    """What a file is, in words, for a refusal."""
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "a regular file"


def refusal(path: Path, mode: int, expected: str = "a regular file") -> StoreError:
    return StoreError(f"{path} is {describe(mode)}, not {expected} trtbench made: trtbench follows no link and "
                      f"reads or writes no special file there; remove it, or use another directory")


@contextlib.contextmanager
def _guard(path: Path, doing: str, kept: str | None = None) -> Iterator[None]:
    """An OSError as one line naming `path`: a DiskError (saying what is `kept`) for disk trouble, else a
    StoreError."""
    try:
        yield
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in DISK_ERRNOS:
            raise DiskError(f"cannot {doing} {path}: {reason}", kept) from None
        raise StoreError(f"cannot {doing} {path}: {reason}") from None


@contextlib.contextmanager
def keeping(kept: str) -> Iterator[None]:
    """Say what is intact when disk trouble stops a write below (the innermost caller knows best)."""
    try:
        yield
    except DiskError as exc:
        if exc.kept:
            raise
        raise DiskError(exc.message, kept) from None


class Dir:
    """A directory opened once; every name is resolved relative to it, never through a link."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        weakref.finalize(self, os.close, fd)

    @classmethod
    def open(cls, path: Path, create: bool = False) -> Dir:
        """A root as the user named it (a link in the path they give is theirs to make)."""
        with _guard(path, "use directory"):
            try:
                if create:
                    path.mkdir(parents=True, exist_ok=True)
                return cls(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path)
            except (FileExistsError, NotADirectoryError):
                raise StoreError(f"{path} exists and is not a directory") from None

    def sub(self, name: str, create: bool = True) -> Dir:
        """The directory `name` (one component) inside this one, made if missing; a link or a file there is refused."""
        path = self.path / name
        with _guard(path, "use directory"):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=self.fd)
            try:
                return Dir(os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=self.fd), path)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                raise refusal(path, self.mode(name) or 0, "a directory") from None

    def stat(self, name: str) -> os.stat_result | None:
        """`name`'s status, the link itself for a link; None when missing."""
        with _guard(self.path / name, "inspect"):
            try:
                return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                return None

    def mode(self, name: str) -> int | None:
        found = self.stat(name)
        return found.st_mode if found else None

    def names(self) -> list[str]:
        with _guard(self.path, "list"):
            return os.listdir(self.fd)

    def file(self, name: str, flags: int) -> int:
        """A descriptor of the regular file `name` (`flags`: O_RDONLY, or O_WRONLY/O_RDWR with O_APPEND, O_CREAT
        ...); anything else there is refused, without following a link or waiting on a FIFO. Raises
        FileNotFoundError for a missing file opened without O_CREAT."""
        try:
            fd = os.open(name, flags | _NOFOLLOW, 0o644, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise
            raise refusal(self.path / name, self.mode(name) or 0) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise refusal(self.path / name, mode)
        return fd

    def read(self, name: str, limit: int = MAX_READ) -> bytes | None:
        """The content of `name`, None when it does not exist; a file over `limit` bytes is refused."""
        path = self.path / name
        with _guard(path, "read"):
            try:
                fd = self.file(name, os.O_RDONLY)
            except FileNotFoundError:
                return None
            with open(fd, "rb", closefd=True) as fh:
                data = fh.read(limit + 1) if os.fstat(fd).st_size <= limit else b"-" * (limit + 1)
        if len(data) > limit:  # larger than it may be, or grown past it while read
            raise StoreError(f"{path} holds more than {limit:,} bytes, more than trtbench reads from it; it is not "
                             f"a file trtbench wrote")
        return data

    def write(self, name: str, data: str | bytes) -> None:
        """Replace `name` whole: a temporary file unique to this call (several threads or processes may write
        here), fsynced, renamed over it. A link or special file in its place is refused, never followed."""
        path = self.path / name
        with _guard(path, "write"):
            mode = self.mode(name)
            if mode is not None and not stat.S_ISREG(mode):
                raise refusal(path, mode)
            tmp = f".{name}.{secrets.token_hex(6)}.tmp"
            try:
                self._write_synced(tmp, data)
                os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=self.fd)
                raise

    def _write_synced(self, tmp: str, data: str | bytes) -> None:
        """A new file `tmp` holding `data`, on disk (fsynced) before it is given a name."""
        fd = self.file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with open(fd, "wb", closefd=True) as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())

    def create(self, name: str, data: str | bytes) -> None:
        """Write `name`, which must not exist yet (not even as a link): a complete fsynced copy, then linked to
        its name, which fails where anything is there, so an existing file is never replaced, even by a race."""
        path = self.path / name
        with _guard(path, "write"):
            if self.stat(name) is not None:
                raise FileExistsError(errno.EEXIST, "exists", str(path))
            tmp = f".{name}.{secrets.token_hex(6)}.tmp"
            try:
                self._write_synced(tmp, data)
                os.link(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=self.fd)

    def append(self, name: str, data: bytes) -> None:
        """Add `data` at the end of `name` (made if missing) and fsync it; a failed write is cut back off, so
        the file holds what it held before."""
        with _guard(self.path / name, "append to"):
            fd = self.file(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)

    def truncate(self, name: str, size: int) -> None:
        with _guard(self.path / name, "truncate"):
            fd = self.file(name, os.O_WRONLY)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)

    def move(self, name: str, to: Dir, new_name: str) -> None:
        """Rename `name` (the entry itself, a link included) into `to`."""
        with _guard(self.path / name, "move"):
            os.replace(name, new_name, src_dir_fd=self.fd, dst_dir_fd=to.fd)

    def unlink(self, name: str) -> None:
        with _guard(self.path / name, "remove"), contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def rmtree(self, name: str) -> None:
        """Remove `name` and what it holds, each entry through its own directory's descriptor (a link is
        removed, never followed); callers first check it is something trtbench made."""
        mode = self.mode(name)
        with _guard(self.path / name, "remove"), contextlib.suppress(FileNotFoundError):
            if mode is not None and stat.S_ISDIR(mode):
                inner = self.sub(name, create=False)
                for entry in inner.names():
                    inner.rmtree(entry)
                os.rmdir(name, dir_fd=self.fd)
            elif mode is not None:
                os.unlink(name, dir_fd=self.fd)

    @contextlib.contextmanager
    def locked(self, name: str, wait_s: float, busy: type[StoreError], why: str) -> Iterator[int]:
        """flock `name` (released by the kernel even on kill -9), waiting up to `wait_s`; else raises `busy`
        with `why` and the pid the holder wrote. Yields the lock file's descriptor."""
        with _guard(self.path / name, "lock", "the lock was not taken and nothing was changed"):
            fd = self.file(name, os.O_RDWR | os.O_CREAT)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                        raise busy(f"{why} (pid {holder})") from None
                    time.sleep(0.05)
            with _guard(self.path / name, "write"):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield fd
        finally:
            os.close(fd)


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write `path` whole (see Dir.write), in its directory as the caller named it."""
    Dir.open(path.parent, create=True).write(path.name, text)


def create_new(path: Path, text: str | bytes) -> None:
    """Write `path`, which must not exist (see Dir.create): StoreError "... exists" where it does."""
    Dir.open(path.parent).create(path.name, text)


def read_file(path: Path, limit: int = MAX_READ) -> bytes | None:
    """`path`'s content, bounded (see Dir.read); None when it or its directory does not exist."""
    if not path.parent.is_dir():
        return None
    return Dir.open(path.parent).read(path.name, limit)


def read_input(path: Path, limit: int, what: str, usual: str) -> bytes:
    """A file the user names (a spec, a model config), read whole up to `limit` bytes: its bytes, or one line
    naming `what` and the problem (missing, unreadable, larger than `usual` explains)."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise SpecError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise SpecError(f"{what} {path}: larger than {limit >> 20} MiB; {usual}")
    return raw
