"""A cache several hosts share: network filesystems found in the mount table, SQLite without WAL
there, and temp entries whose owner on another host is never judged by a local process id."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from comptrust_plugin import shared_cache, storage
from comptrust_plugin.engine.cache import ResponseCache
from comptrust_plugin.errors import TrustError
from comptrust_plugin.shared_cache import (
    FOREIGN_STALE_SECONDS,
    Owner,
    network_fstype,
    owner_gone,
    parse_mounts,
    parse_owner,
    shared_reason,
)

# /proc/self/mountinfo as a cluster node shows it (fields as proc(5) documents them)
MOUNTINFO = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
61 22 0:52 / /home rw,relatime shared:30 - nfs4 fs1:/export/home rw,vers=4.2,hard,proto=tcp
70 61 259:3 / /home/alice/local rw,relatime shared:31 - ext4 /dev/nvme1n1 rw
80 22 0:60 / /scratch rw,relatime shared:40 - lustre 10.0.0.1@o2ib:/scratch rw,flock
81 22 0:61 / /mnt/my\\040share rw,relatime - cifs //nas/share rw,vers=3.1.1
90 22 0:70 / /mnt/laptop rw,nosuid,nodev shared:50 - fuse.sshfs alice@laptop:/data rw,user_id=1000
91 22 0:71 / /mnt/laptop rw,relatime shared:51 - tmpfs tmpfs rw
"""
# /proc/mounts layout (older kernels, some containers)
MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/cache /mnt/cache nfs rw,vers=3,hard 0 0
beegfs_nodev /beegfs beegfs rw,relatime 0 0
"""


def test_mountinfo_lines_parse_to_points_and_types() -> None:
    mounts = parse_mounts(MOUNTINFO)
    assert [m.fstype for m in mounts][:3] == ["ext4", "proc", "nfs4"]
    assert mounts[5].point == "/mnt/my share"  # \040 is a space


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/bob/.cache/comptrust", "nfs4"),
        ("/home", "nfs4"),
        ("/home/alice/local/cache", None),  # a local disk mounted inside the NFS home
        ("/homework/cache", None),  # a name that only starts like a mount point
        ("/scratch/u1/cache", "lustre"),
        ("/mnt/my share/cache", "cifs"),
        ("/mnt/laptop/cache", None),  # a later tmpfs mount hides the sshfs one
        ("/var/cache/comptrust", None),
    ],
)
def test_the_mount_holding_a_path_decides(path: str, expected: str | None) -> None:
    assert network_fstype(path, MOUNTINFO) == expected


def test_proc_mounts_layout_too() -> None:
    assert network_fstype("/mnt/cache/comptrust", MOUNTS) == "nfs"
    assert network_fstype("/beegfs/x", MOUNTS) == "beegfs"
    assert network_fstype("/opt/x", MOUNTS) is None
    sshfs = "alice@laptop:/data /mnt/laptop fuse.sshfs rw 0 0\n"
    assert network_fstype("/mnt/laptop/c", sshfs) == "fuse.sshfs"


def test_the_environment_overrides_the_mount_table(tmp_path: Path) -> None:
    def on_nfs() -> str:
        return f"x {tmp_path} nfs4 rw 0 0\n"

    assert shared_reason(tmp_path, {}, on_nfs) == "on a nfs4 filesystem"
    assert shared_reason(tmp_path / "not" / "made" / "yet", {}, on_nfs) == "on a nfs4 filesystem"
    assert shared_reason(tmp_path, {"COMPTRUST_SHARED_CACHE": "auto"}, lambda: "") is None
    assert shared_reason(tmp_path, {"COMPTRUST_SHARED_CACHE": "0"}, on_nfs) is None
    assert shared_reason(tmp_path, {"COMPTRUST_SHARED_CACHE": "yes"}, lambda: "") == "COMPTRUST_SHARED_CACHE=yes"
    with pytest.raises(TrustError, match="COMPTRUST_SHARED_CACHE=maybe: use 1"):
        shared_reason(tmp_path, {"COMPTRUST_SHARED_CACHE": "maybe"}, on_nfs)


# ------------------------------------------------------------------ SQLite journal mode
def _journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_a_shared_cache_opens_sqlite_without_wal(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite3", shared="on a nfs4 filesystem")
    assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert cache._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    cache.put_many([("k", {"a": 1})])
    assert cache.get_many(["k"]) == {"k": {"a": 1}}
    assert not Path(str(cache.path) + "-wal").exists()
    cache.close()
    assert _journal_mode(tmp_path / "c.sqlite3") == "delete"  # stored in the file, not the connection


def test_a_local_cache_keeps_wal_and_a_shared_one_turns_it_off(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.sqlite3"
    monkeypatch.setenv("COMPTRUST_SHARED_CACHE", "0")
    local = ResponseCache(path)
    assert local.shared is None and _journal_mode(path) == "wal"
    local.put_many([("k", 1)])
    local.close()
    monkeypatch.setenv("COMPTRUST_SHARED_CACHE", "1")
    shared = ResponseCache(path)  # the same file, now named shared: WAL off, rows kept
    assert shared.shared == "COMPTRUST_SHARED_CACHE=1"
    assert _journal_mode(path) == "delete" and shared.get_many(["k"]) == {"k": 1}
    shared.close()


def test_hosts_that_disagree_about_sharing_are_told_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("comptrust_plugin.engine.cache._MODE_ATTEMPTS", 2)
    path = tmp_path / "c.sqlite3"
    local = ResponseCache(path, shared=None)  # holds the file open in WAL mode
    local.put_many([("k", 1)])
    reader = sqlite3.connect(path)  # another process, mid-read
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM responses").fetchall()
    expected = "journal mode elsewhere.*shared by hosts: COMPTRUST_SHARED_CACHE=1.*same COMPTRUST_SHARED_CACHE"
    with pytest.raises(TrustError, match=expected):
        ResponseCache(path, shared="COMPTRUST_SHARED_CACHE=1")
    reader.close()
    local.close()
    assert [p.name for p in tmp_path.iterdir() if "corrupt" in p.name] == []  # busy is not broken


# ------------------------------------------------------------------ owners of temp entries
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _on_host(monkeypatch, name: str) -> str:
    monkeypatch.setattr(shared_cache.socket, "gethostname", lambda: name)
    return shared_cache.host_tag()


def test_temp_names_carry_the_host(monkeypatch) -> None:
    alpha = _on_host(monkeypatch, "alpha.cluster.example")
    assert alpha.startswith("alpha_cluster_example")
    prefix = storage.temp_prefix("model")
    assert prefix == f".model.{os.getpid()}@{alpha}."
    assert parse_owner(prefix.split(".")[2]) == Owner(os.getpid(), alpha)
    assert parse_owner("1234") == Owner(1234, None)  # a name from before owners carried hosts
    assert parse_owner("12a") is None and parse_owner("12@a.b") is None and parse_owner("@x") is None


def test_an_owner_on_another_host_is_never_judged_by_its_pid() -> None:
    def everyone_dead(pid: int) -> bool:
        return False

    def everyone_alive(pid: int) -> bool:
        return True

    assert owner_gone(Owner(7, "alpha"), 0, everyone_dead, "alpha")
    assert not owner_gone(Owner(7, "alpha"), 10 * FOREIGN_STALE_SECONDS, everyone_alive, "alpha")
    assert owner_gone(Owner(7, None), 0, everyone_dead, "alpha")
    assert not owner_gone(Owner(7, "beta"), FOREIGN_STALE_SECONDS - 60, everyone_dead, "alpha")
    assert owner_gone(Owner(7, "beta"), FOREIGN_STALE_SECONDS + 60, everyone_alive, "alpha")


def _age(entry: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(entry, (stamp, stamp))


def test_orphans_of_two_hosts_on_one_shared_folder(tmp_path: Path, monkeypatch) -> None:
    dead, alive = _dead_pid(), os.getpid()
    beta = _on_host(monkeypatch, "beta")
    beta_live = tmp_path / f".model.{dead}@{beta}.x1"  # pid `dead` is no process here, but beta's
    beta_live.mkdir()
    beta_old = tmp_path / f".model.{alive}@{beta}.x2.tmp"  # on alpha that pid is alive: not asked
    beta_old.write_text("")
    _age(beta_old, FOREIGN_STALE_SECONDS + 3600)
    beta_busy = tmp_path / f".model.{dead}@{beta}.x3"  # an old folder whose file is still growing
    beta_busy.mkdir()
    (beta_busy / "weights.safetensors").write_text("...")
    _age(beta_busy, FOREIGN_STALE_SECONDS + 3600)

    alpha = _on_host(monkeypatch, "alpha")
    alpha_dead = tmp_path / f".model.{dead}@{alpha}.y1.tmp"
    alpha_live = tmp_path / f".model.{alive}@{alpha}.y2.tmp"
    legacy_dead = tmp_path / f".model.{dead}.z1.tmp"
    other_target = tmp_path / f".other.{dead}@{alpha}.w.tmp"
    for entry in (alpha_dead, alpha_live, legacy_dead, other_target):
        entry.write_text("")

    assert storage.remove_orphans(tmp_path, "model") == 3
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {beta_live.name, beta_busy.name, alpha_live.name, other_target.name}

    # seen from beta, its own folder with a dead pid is an orphan at once; alpha's live one is kept
    _on_host(monkeypatch, "beta")
    assert storage.remove_orphans(tmp_path, "model") == 2
    assert {p.name for p in tmp_path.iterdir()} == {alpha_live.name, other_target.name}


def test_a_folder_another_host_finished_first_is_kept(tmp_path: Path) -> None:
    """Where the filesystem's locks do not reach across hosts, two hosts may build the same
    folder; the second rename finds the first one's complete folder and keeps it."""
    target = tmp_path / "artifact"

    def build(folder: Path) -> None:
        (folder / "w.bin").write_bytes(b"ours")
        target.mkdir()  # meanwhile, another host completes the same folder
        (target / "w.bin").write_bytes(b"theirs")
        storage.write_manifest(target)
        (target / storage.COMPLETE).write_text("ok\n", encoding="ascii")

    path, built = storage.build_folder(target, build, "test folder")
    assert path == target and built
    assert (target / "w.bin").read_bytes() == b"theirs"
    assert storage.folder_problem(target) is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".artifact.")] == []


def test_a_rename_onto_an_incomplete_folder_still_fails(tmp_path: Path) -> None:
    target = tmp_path / "artifact"

    def build(folder: Path) -> None:
        (folder / "w.bin").write_bytes(b"ours")
        target.mkdir()
        (target / "partial").write_bytes(b"half")

    with pytest.raises(OSError):
        storage.build_folder(target, build, "test folder")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".artifact.")] == []
