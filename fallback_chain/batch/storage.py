"""Where outputs go: a local folder or any fsspec URL (``s3://bucket/prefix`` with s3fs).

Every write is atomic. Locally: a temporary file in the same folder, flushed (and fsynced
unless ``fsync=False``), then renamed over the target; a process killed mid-write leaves
its temporary file (``.NAME.<pid>-<n>.tmp``) behind, and :meth:`Storage.prepare` removes
those whose process is gone. On an object store: one PUT per object, which the store applies
whole or not at all. Network calls and fsyncs run in a private thread
pool, so the event loop never waits on them; small local reads, existence checks and
page-cache writes (``fsync=False``) run inline, which is cheaper than a trip to a thread.

Names are path components made by :mod:`.naming`; :func:`~.naming.check_part` refuses anything
else, so nothing is ever written outside the root. Symbolic links are never followed for a
write: a file is renamed over a link (replacing it), a sub-folder that is a link is refused,
and the manifest, failures file and lock are opened with ``O_NOFOLLOW`` or replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..imaging import IMAGE_EXTENSIONS
from .naming import check_part

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

T = TypeVar("T")

#: Image files we write, and with the sidecar's ``.json``, what a folder of our outputs has.
IMAGE_SUFFIXES = IMAGE_EXTENSIONS
OUTPUT_SUFFIXES = (".json", *IMAGE_SUFFIXES)


class StorageError(OSError):
    """The output target cannot be used (missing bucket, no permission...)."""


_SEQ = itertools.count()
_O_BINARY = getattr(os, "O_BINARY", 0)
#: Our temporary files: ``.NAME.<pid>-<n>.tmp`` (see :meth:`Storage.write_sync`).
_TEMP = re.compile(r"\..+\.(?P<pid>\d+)-\d+\.tmp")
#: Where a process cannot be probed (not POSIX), a temporary file this old is a leftover.
_STALE_TEMP_S = 24 * 3600.0


def _writer_gone(pid: int, mtime: float) -> bool:
    """Whether the process that made a temporary file is certainly gone."""
    if pid == os.getpid():
        return False
    if os.name != "posix":  # os.kill(pid, 0) would terminate it on Windows
        return time.time() - mtime > _STALE_TEMP_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


class Storage:
    """A root folder or prefix, and atomic reads and writes of named objects below it."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *,
                 fsync: bool = True, threads: int = 16, temp_depth: int = 0) -> None:
        from fsspec.core import url_to_fs
        from fsspec.implementations.local import LocalFileSystem

        self.url = url.rstrip("/") or url
        fs, root = url_to_fs(url, **(storage_options or {}))
        self.fs: AbstractFileSystem = fs
        self.local = isinstance(fs, LocalFileSystem)
        self.root = os.path.abspath(root) if self.local else root.rstrip("/")
        self.fsync = fsync
        self.temp_depth = temp_depth  # folder levels below the root where we write files
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="batch-io")

    # ------------------------------------------------------------------ paths

    def path(self, *parts: str) -> str:
        """The full path of ``parts`` below the root (each part checked)."""
        for part in parts:
            check_part(part)
        if self.local:
            return os.path.join(self.root, *parts)
        return "/".join((self.root, *parts))

    def display(self, *parts: str) -> str:
        """A user-facing location (the URL as given, plus the name)."""
        return "/".join((self.url, *parts)) if parts else self.url

    # ------------------------------------------------------------------ lifecycle

    async def prepare(self) -> None:
        """Create the local folder (removing temporary files of killed writers), or check that
        the bucket exists."""
        await self._run(self._prepare)

    def _prepare(self) -> None:
        if self.local:
            if os.path.exists(self.root) and not os.path.isdir(self.root):
                raise StorageError(f"{self.url}: exists and is not a folder; pass --out a "
                                   "folder (new or existing) or an s3:// URL")
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:  # a parent is a file, no permission, read-only disk...
                raise StorageError(f"{self.url}: cannot create the output folder "
                                   f"({exc.strerror or exc})") from None
            if not os.access(self.root, os.W_OK):
                raise StorageError(f"{self.root}: not writable")
            self.sweep_temp_files()
            return
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.info(bucket)
        except FileNotFoundError:
            raise StorageError(f"{self.url}: bucket {bucket!r} does not exist") from None
        except Exception as exc:
            raise StorageError(f"{self.url}: cannot reach the output ({exc})") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def sweep_temp_files(self) -> int:
        """Remove the temporary files (``.NAME.<pid>-<n>.tmp``) that writers killed mid-write
        left in the root (and ``temp_depth`` levels of folders below it); returns how many.
        Local only: an object store's PUT leaves nothing behind."""
        if not self.local:
            return 0
        return _sweep(self.root, self.temp_depth)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # ------------------------------------------------------------------ objects

    async def write(self, data: bytes, *parts: str) -> None:
        if self.local and not self.fsync:
            self.write_sync(data, *parts)  # a page-cache write: quicker than a thread hop
        else:
            await self._run(self.write_sync, data, *parts)

    async def write_all(self, files: list[tuple[bytes, str]]) -> None:
        """Write several objects (in this order) with one trip to the thread pool."""
        if self.local and not self.fsync:
            self._write_all(files)
        else:
            await self._run(self._write_all, files)

    def _write_all(self, files: list[tuple[bytes, str]]) -> None:
        for data, name in files:
            self.write_sync(data, name)

    def write_sync(self, data: bytes, *parts: str) -> None:
        path = self.path(*parts)
        if not self.local:
            self.fs.pipe_file(path, data)
            return
        folder = os.path.dirname(path)
        if len(parts) > 1:
            os.makedirs(folder, exist_ok=True)
            if os.path.islink(folder):  # writes below a link would land outside the root
                raise StorageError(f"{folder} is a symbolic link; refusing to write through it")
        while True:  # our own temporary name: O_EXCL, and the umask applies (no chmod)
            tmp = os.path.join(folder, f".{parts[-1][:100]}.{os.getpid()}-{next(_SEQ)}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
                break
            except FileExistsError:
                continue
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def read(self, *parts: str) -> bytes:
        if self.local:
            return self.read_sync(*parts)  # small local files: no thread hop
        return await self._run(self.read_sync, *parts)

    def read_sync(self, *parts: str) -> bytes:
        path = self.path(*parts)
        if self.local:
            with open(path, "rb") as fh:
                return fh.read()
        return bytes(self.fs.cat_file(path))

    async def exists(self, *parts: str) -> bool:
        if self.local:
            return self.exists_sync(*parts)
        return await self._run(self.exists_sync, *parts)

    def exists_sync(self, *parts: str) -> bool:
        path = self.path(*parts)
        if self.local:
            return os.path.isfile(path)
        return bool(self.fs.exists(path))

    async def copy(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        """Copy one object to another name (server-side on object stores)."""
        await self._run(self._copy, src, dst)

    def _copy(self, src: tuple[str, ...], dst: tuple[str, ...]) -> None:
        if self.local:
            self.write_sync(self.read_sync(*src), *dst)
        else:
            self.fs.copy(self.path(*src), self.path(*dst))

    async def delete(self, *parts: str) -> None:
        await self._run(self._delete, *parts)

    async def delete_names(self, names: list[str]) -> list[str]:
        """Delete those of ``names`` (objects in the root) that exist; returns them. Locally
        one ``unlink`` per name; on an object store one listing per common stem, then one
        delete per object found."""
        if self.local and not self.fsync:
            return self._delete_names(names)
        return await self._run(self._delete_names, names)

    def _delete_names(self, names: list[str]) -> list[str]:
        removed = []
        if self.local:
            for name in names:
                try:
                    os.unlink(self.path(name))
                except FileNotFoundError:
                    continue
                removed.append(name)
            return removed
        wanted = set(names)
        for stem in sorted({n.split("~", 1)[0].rsplit(".", 1)[0] for n in names}):
            for found in self.fs.glob(self.path(stem) + "*"):
                name = str(found).rsplit("/", 1)[-1]
                if name in wanted:
                    self.fs.rm_file(self.path(name))
                    removed.append(name)
        return removed

    def _delete(self, *parts: str) -> None:
        path = self.path(*parts)
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        elif self.fs.exists(path):
            self.fs.rm_file(path)

    def may_hold_outputs(self) -> bool:
        """False when the target certainly holds no sidecar or image yet (a new or empty local
        folder, a missing prefix), so resume need not look for files item by item."""
        if self.local:  # a sidecar, or an image a killed run wrote before its sidecar
            try:
                with os.scandir(self.root) as entries:
                    return any(e.name.endswith(OUTPUT_SUFFIXES) for e in entries)
            except FileNotFoundError:
                return False
        try:  # s3fs answers this for a prefix with one LIST of at most one key
            return bool(self.fs.exists(self.root))
        except FileNotFoundError:
            return False

    def list_sync(self, *parts: str) -> list[str]:
        """Names of the objects directly below ``parts`` (sorted; empty if none)."""
        path = self.path(*parts)
        if self.local:
            try:
                return sorted(e.name for e in os.scandir(path) if e.is_file())
            except FileNotFoundError:
                return []
        try:
            entries = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(str(e).rsplit("/", 1)[-1] for e in entries)

    def run_in_pool(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


def _sweep(folder: str, depth: int) -> int:
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if depth > 0 and entry.is_dir(follow_symlinks=False):
            removed += _sweep(entry.path, depth - 1)
            continue
        m = _TEMP.fullmatch(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if _writer_gone(int(m["pid"]), entry.stat(follow_symlinks=False).st_mtime):
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            pass
    return removed
