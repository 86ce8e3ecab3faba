"""One SQLite file used from asyncio: what the builtin store and the builtin search index share.

Each of them opens its own file with its own :class:`SQLiteDatabase` (the store's tables never
appear in the search file, nor the index's in the store's).  sqlite3 blocks, so no call runs on
the event loop: writes go through one writer connection on its own single thread (SQLite allows
one writer at a time anyway, and a single thread keeps writes in order without lock waits),
reads through a small pool of reader connections on other threads.  The file is in WAL mode, so
readers read a consistent snapshot while the writer writes.  Every statement is bounded by
``timeout_ms``: a progress handler aborts it past its deadline and the caller gets
:class:`~restplug.errors.QueryTimeout`; SQLite's errors meaning "cannot be used now" become
:class:`~restplug.errors.BackendUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import queue
import random
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from restplug.errors import BackendUnavailable, ConfigError, QueryTimeout

T = TypeVar("T")

_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
# The progress handler runs every this many VM instructions: often enough to stop a query
# within a fraction of a millisecond of its deadline, rarely enough to cost nothing measurable.
_PROGRESS_STEPS = 2000
# Page cache of the writer connection, in KiB (SQLite's default is 2 MiB).
_WRITER_CACHE_KIB = 64 * 1024
# Primary result codes meaning the database cannot be used right now (rather than a bug).
_UNAVAILABLE = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_NOTADB,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_READONLY,
}


def path_from_url(url: str) -> str:
    """The file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"{url!r} is not a SQLite URL: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = parts.path[1:]
    if not path or path.endswith("/"):
        raise ConfigError(f"{url!r} names no database file")
    return path


class SQLiteDatabase:
    """One SQLite file: a writer thread, pooled readers, a time bound on every statement.

    ``timeout_ms`` bounds every statement (and the wait for another process's write lock);
    ``readers`` is how many reads may run at once.  A subclass creates what its file needs in
    :meth:`set_up`.
    """

    def __init__(self, url: str, *, timeout_ms: int = 5000, readers: int = 4) -> None:
        if timeout_ms <= 0 or readers <= 0:
            raise ConfigError("timeout_ms and readers must be positive")
        self.path = path_from_url(url)
        self.timeout_ms = timeout_ms
        self._readers = readers
        self._writer: _Connection | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        self._reader_pool: queue.SimpleQueue[_Connection] = queue.SimpleQueue()
        self._all_readers: list[_Connection] = []
        self._inline: _Connection | None = None

    async def open(self) -> None:
        """Create the file (and its folder) if needed, switch it to WAL, run :meth:`set_up`,
        open the connections."""
        if self._writer is not None:
            return
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="restplug-sqlite-write")
        self._read_threads = ThreadPoolExecutor(
            self._readers, thread_name_prefix="restplug-sqlite-read"
        )
        loop = asyncio.get_running_loop()
        try:
            self._writer = await self._retry_locked(
                lambda: loop.run_in_executor(self._write_thread, self._open_writer)
            )
            for _ in range(self._readers):
                reader = await loop.run_in_executor(self._read_threads, self._connect, True)
                self._all_readers.append(reader)
                self._reader_pool.put(reader)
            inline = await loop.run_in_executor(self._read_threads, self._connect, True)
            self._all_readers.append(inline)
            # Never waits for a lock on the event loop: a locked file sends the read to a
            # thread (see run_point_read).
            inline.db.execute("PRAGMA busy_timeout=0")
            self._inline = inline
        except (OSError, sqlite3.Error) as e:
            await self.close()
            raise BackendUnavailable(f"cannot open SQLite database {self.path!r}: {e}") from e

    def set_up(self, db: sqlite3.Connection) -> None:
        """Create what the file needs (tables a subclass keeps there); runs on the writer
        connection at every :meth:`open`, so it must be idempotent."""

    async def _retry_locked(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again while another process holds the file locked, for at most the
        time bound.  Processes opening one file together (two servers, the workers of
        ``serve``) each switch it to WAL and create the same tables, and SQLite answers some
        of those steps with an immediate "database is locked" instead of waiting its busy
        timeout (seen in one start of two servers in six, before this retry)."""
        deadline = time.monotonic() + self.timeout_ms / 1000
        while True:
            try:
                return await attempt()
            except sqlite3.OperationalError as e:
                if not _locked(e) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(random.uniform(0.01, 0.05))

    def _open_writer(self) -> _Connection:
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        writer = self._connect(False)
        try:
            db = writer.db
            # Writes touch pages all over the indexes (a bulk write's multikey rows, say):
            # past SQLite's default 2 MiB page cache, large loads slow down as the file grows.
            db.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            self.set_up(db)
        except BaseException:
            writer.db.close()
            raise
        return writer

    def _connect(self, readonly: bool) -> _Connection:
        conn = _Connection(self.path, self.timeout_ms)
        db = conn.db
        db.execute(f"PRAGMA busy_timeout={int(self.timeout_ms)}")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA temp_store=MEMORY")
        if readonly:
            db.execute("PRAGMA query_only=ON")
        return conn

    async def close(self) -> None:
        """Let running calls finish, close every connection."""
        write_thread, read_threads = self._write_thread, self._read_threads
        writer, readers = self._writer, list(self._all_readers)
        self._writer = self._write_thread = self._read_threads = self._inline = None
        self._all_readers.clear()
        self._reader_pool = queue.SimpleQueue()

        def shut() -> None:
            for executor in (write_thread, read_threads):
                if executor is not None:
                    executor.shutdown(wait=True)
            for conn in [*readers, *([writer] if writer else [])]:
                conn.db.close()

        await asyncio.get_running_loop().run_in_executor(None, shut)

    async def ping(self) -> None:
        """Run a trivial query on a reader connection."""
        await self.run_read(lambda db: db.execute("SELECT 1").fetchone())

    async def run_write(self, run: Callable[[sqlite3.Connection], T], *, bounded: bool = True) -> T:
        """``run(connection)`` on the single writer connection, in its thread; ``bounded``
        applies the query time bound."""
        writer, thread = self._writer, self._write_thread
        if writer is None or thread is None:
            raise BackendUnavailable("the SQLite database is not open")
        call = functools.partial(writer.run, run, bounded=bounded)
        return await asyncio.get_running_loop().run_in_executor(thread, call)

    def queue_write(self, run: Callable[[sqlite3.Connection], Any]) -> None:
        """``run(connection)`` on the writer after the writes queued so far, not awaited: for
        upkeep no caller waits for (a failure is dropped; closed meanwhile, nothing runs)."""
        writer, thread = self._writer, self._write_thread
        if writer is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # the thread was shut down meanwhile
                thread.submit(writer.run, run)

    async def run_read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """``run(connection)`` on a pooled reader connection, in its thread, time-bounded."""
        threads, pool = self._read_threads, self._reader_pool
        if threads is None:
            raise BackendUnavailable("the SQLite database is not open")

        def borrow() -> T:
            reader = pool.get()
            try:
                return reader.run(run)
            finally:
                pool.put(reader)

        return await asyncio.get_running_loop().run_in_executor(threads, borrow)

    async def run_point_read(self, run: Callable[[sqlite3.Connection], T]) -> T:
        """``run(connection)`` for a read of a handful of rows by primary key, on the event
        loop's own thread: handing it to a reader thread (a future, a wake-up of the loop,
        the GIL passed back and forth) costs several times the lookup itself.  Its connection
        never waits for a lock: one that would (a rare case in WAL mode) runs the read in a
        thread instead, as :meth:`run_read`."""
        inline = self._inline
        if inline is None:
            raise BackendUnavailable("the SQLite database is not open")
        try:
            return inline.run(run)
        except QueryTimeout as e:
            if not (isinstance(e.__cause__, sqlite3.Error) and _locked(e.__cause__)):
                raise
        return await self.run_read(run)


class _Connection:
    """A sqlite3 connection whose statements stop at a deadline.

    :meth:`run` sets the deadline around each call, (re)installs the progress handler that
    enforces it (:func:`transaction` removes it to roll back) and turns SQLite's errors into
    the store's.  Autocommit mode: transactions are explicit.
    """

    def __init__(self, path: str, timeout_ms: int) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.timeout = timeout_ms / 1000
        self.deadline = math.inf

    def _past_deadline(self) -> bool:
        return time.monotonic() > self.deadline

    def run(self, fn: Callable[[sqlite3.Connection], T], *, bounded: bool = True) -> T:
        """``fn(db)`` within ``timeout`` (without a deadline when not ``bounded``; waits for
        another connection's lock stay bounded by ``busy_timeout``)."""
        self.deadline = time.monotonic() + self.timeout if bounded else math.inf
        self.db.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        try:
            return fn(self.db)
        except sqlite3.Error as e:
            raise _translate(e, self.timeout) from e
        finally:
            self.deadline = math.inf


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, mode: str) -> Iterator[None]:
    db.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        if db.in_transaction:  # SQLite may already have rolled back (interrupt, I/O error)
            db.set_progress_handler(None, 0)  # a rollback past the deadline must still run
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def quoted_table(name: str) -> str:
    """The quoted table name of a collection; the name is checked, so quoting cannot be
    escaped."""
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise ValueError(f"invalid collection name {name!r}")
    if name.lower().startswith("sqlite_"):
        raise ValueError(f"collection name {name!r} is reserved by SQLite")
    return f'"{name}"'


def check_id(id: Any) -> None:
    """A document id is an int (signed 64-bit, as SQLite holds it) or a str."""
    if isinstance(id, bool) or not isinstance(id, int | str):
        raise TypeError(f"an id is an int or a str, not {type(id).__name__}")
    if isinstance(id, int) and not -(2**63) <= id < 2**63:
        raise ValueError(f"id {id} is outside the 64-bit range")


def _locked(error: sqlite3.Error) -> bool:
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _translate(error: sqlite3.Error, timeout: float) -> Exception:
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_INTERRUPT:
        return QueryTimeout(f"the query took longer than {timeout * 1000:.0f} ms")
    if _locked(error):
        return QueryTimeout(f"the database stayed locked for {timeout * 1000:.0f} ms")
    if code in _UNAVAILABLE or isinstance(error, sqlite3.ProgrammingError):
        return BackendUnavailable(f"SQLite: {error}")
    return error  # anything else is a bug, reported as is


__all__ = ["SQLiteDatabase", "check_id", "path_from_url", "quoted_table", "transaction"]
