"""Response cache: sqlite in WAL mode, one row per request, keyed by full identity.

Safe for several processes (xdist workers) on one file: WAL lets readers run beside a writer,
writes are short transactions with a generous busy timeout. A file that is not a valid
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

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
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
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
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
