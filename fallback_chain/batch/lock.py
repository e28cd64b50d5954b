"""One batch run per output target at a time.

Two runs writing into one folder would each generate (and pay for) every item, and leave
orphan images. A run therefore takes a lock on its output before it reads the manifest, holds
it to the end, and a second run refuses to start, naming the holder:

* Local folder: ``OUT/.fallback-chain.lock``, locked with ``fcntl.flock`` (an OS lock: the
  kernel drops it when the holder exits, however it exits, so a killed run never leaves a
  stale lock). The file holds the holder's pid, host and run id, for the message; the
  holder removes it at the end (while still holding it; a run that locked a file since
  removed tries again). (Where
  there is no ``fcntl``, i.e. on Windows, no local lock is taken.)
* Object store (``s3://`` and other fsspec URLs): the object ``OUT/.fallback-chain.lock``,
  created with a conditional write (``If-None-Match: *`` on S3) where the backend supports it,
  holding the owner's token and a lease (``expires_at``). The run renews the lease while it
  lives; a lock whose lease has run out (its run was killed) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from .storage import Storage, StorageError

LOCK_NAME = ".fallback-chain.lock"
LEASE_S = 60.0


class OutputLocked(StorageError):
    """Another run holds the output target."""


class OutputLock:
    """The lock of one run on its output target (see the module docstring)."""

    def __init__(self, storage: Storage, run_id: str, *, lease_s: float = LEASE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.run_id = run_id
        self.lease_s = lease_s
        self.clock = clock
        self.token = secrets.token_hex(8)
        self._fd: int | None = None
        self._renewed = 0.0
        self.held = False

    def _record(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "run": self.run_id,
                "owner": self.token, "expires_at": self.clock() + self.lease_s}

    def _refuse(self, holder: dict[str, Any] | None) -> OutputLocked:
        who = "another batch run"
        if holder:
            who += f" (pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
            who += f", run {holder['run']})" if holder.get("run") else ")"
        return OutputLocked(
            f"{self.storage.url}: {who} is writing to this output; wait for it to finish, "
            "or pass another --out (two runs on one output would both pay for every item)")

    # ------------------------------------------------------------------ taking it

    def acquire(self) -> None:
        """Take the lock or raise :class:`OutputLocked` (blocking: run it in a thread)."""
        if self.storage.local:
            self._acquire_local()
        else:
            self._acquire_remote()
        self.held = True
        self._renewed = self.clock()

    def _acquire_local(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX (Windows): no OS lock to take
            return
        path = self.storage.path(LOCK_NAME)
        while True:
            fd = self._open_local(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse(os.pread(fd, 4096, 0))
                os.close(fd)
                raise self._refuse(holder) from None
            try:  # the holder before us may have removed the file between our open and lock
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._record()).encode() + b"\n", 0)
        except OSError as exc:  # a full disk: still ours (the lock is the flock, not the text)
            self.held = True
            self.release()
            raise StorageError(f"{path}: cannot write the lock file ({exc.strerror or exc})"
                               ) from None

    @staticmethod
    def _open_local(path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            why = ("it is a symbolic link" if os.path.islink(path)
                   else str(exc.strerror or exc))
            raise StorageError(f"{path}: cannot open the lock file ({why})") from None

    def _acquire_remote(self) -> None:
        path = self.storage.path(LOCK_NAME)
        for _ in range(3):
            if self._create(path):
                return
            holder = self._read(path)
            if holder is None:
                continue  # released between our write and our read
            if float(holder.get("expires_at", 0)) > self.clock():
                raise self._refuse(holder)
            with contextlib.suppress(FileNotFoundError):  # a dead run's lease: take it over
                self.storage.fs.rm_file(path)
        raise self._refuse(self._read(path))

    def _create(self, path: str) -> bool:
        """Write our record only if no lock object exists; False if one does."""
        body = json.dumps(self._record()).encode()
        fs = self.storage.fs
        try:
            fs.pipe_file(path, body, mode="create")
        except FileExistsError:
            return False
        except (TypeError, NotImplementedError):  # no conditional write: check, write, re-read
            if fs.exists(path):
                return False
            fs.pipe_file(path, body)
            return (self._read(path) or {}).get("owner") == self.token
        except OSError as exc:
            if "PreconditionFailed" in str(exc) or "412" in str(exc):
                return False
            raise
        return True

    def _read(self, path: str) -> dict[str, Any] | None:
        try:
            return _parse(bytes(self.storage.fs.cat_file(path)))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ holding it

    def renew_due(self) -> bool:
        """Whether the remote lease should be renewed now (a third of it has passed); True
        once per renewal (the caller then runs :meth:`renew`)."""
        if (not self.held or self.storage.local
                or self.clock() - self._renewed < self.lease_s / 3):
            return False
        self._renewed = self.clock()
        return True

    def renew(self) -> None:
        """Extend the remote lease (blocking)."""
        path = self.storage.path(LOCK_NAME)
        holder = self._read(path)
        if holder is not None and holder.get("owner") != self.token:
            return  # taken over after our lease ran out: not ours to extend
        self.storage.fs.pipe_file(path, json.dumps(self._record()).encode())

    def release(self) -> None:
        """Give the lock up (blocking; a no-op when it is not held)."""
        if not self.held:
            return
        self.held = False
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):  # removed while still held (see acquire)
                os.unlink(self.storage.path(LOCK_NAME))
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            return
        path = self.storage.path(LOCK_NAME)
        with contextlib.suppress(OSError):
            if (self._read(path) or {}).get("owner") == self.token:
                self.storage.fs.rm_file(path)


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8", "replace") or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
