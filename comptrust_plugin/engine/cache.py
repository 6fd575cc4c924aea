"""Response cache: sqlite, one row per request, keyed by full identity.

Safe for several processes (xdist workers) on one file: WAL lets readers run beside a writer,
writes are short transactions with a generous busy timeout. WAL keeps its index in shared
memory, which processes on other hosts cannot see, so a cache several hosts share (on a network
filesystem, or named shared: shared_cache.shared_reason) uses SQLite's rollback journal
instead, whose file locks the network filesystem arbitrates. A file that is not a valid
database is moved aside (quarantined, never deleted) and a fresh cache starts.
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import TrustError
from ..shared_cache import SHARED_CACHE_ENV, shared_reason

_MODE_ATTEMPTS = 20  # about 10 s of waiting for another process to finish its transaction
_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"


class ResponseCache:
    def __init__(self, path: Path, shared: str | None | bool = False) -> None:
        """`shared`: why the file is shared by hosts (rollback journal), None when it is not
        (WAL); left out, the mount table and COMPTRUST_SHARED_CACHE decide."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.shared = shared_reason(path.parent) if shared is False else shared
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            quarantine = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            path.rename(quarantine)
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            warnings.warn(
                f"comptrust: response cache {path} was unreadable ({exc}); moved it to "
                f"{quarantine.name} and started a fresh cache",
                stacklevel=2,
            )
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        wanted, mode = ("delete" if self.shared else "wal"), "another"
        for attempt in range(_MODE_ATTEMPTS):  # changing the mode takes no busy timeout: retry
            try:
                mode = str(conn.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]).lower()
                break
            except sqlite3.OperationalError as exc:  # busy, not broken: never quarantined
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
        # A local process may use a file another host keeps in rollback mode (safe either way);
        # a shared one must not use a WAL file: other hosts cannot see its index.
        if self.shared and mode != wanted:
            conn.close()
            raise TrustError(f"response cache {self.path} is held open in {mode} journal mode elsewhere, and this "
                             f"process needs the rollback journal (shared by hosts: {self.shared}); give every "
                             f"host the same {SHARED_CACHE_ENV} setting")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.shared else 'NORMAL'}")
        conn.execute(_SCHEMA)
        conn.execute("SELECT count(*) FROM responses LIMIT 1").fetchone()
        return conn

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, value in rows:
                try:
                    found[key] = json.loads(value)
                except ValueError:
                    continue  # an unreadable row is a miss: recomputed and overwritten
        return found

    def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        now = time.time()
        rows = [(key, json.dumps(value, ensure_ascii=False), now) for key, value in items]
        if not rows:
            return
        with self._conn:  # one transaction
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._conn.close()
