"""Caches used by several hosts: which filesystem a cache lives on, and which host owns a temp file.

Two things that are safe on a local disk are not on a filesystem several machines mount:
SQLite's WAL journal (its index is shared memory, which another host cannot see) and judging a
temporary file's owner by its process id (a live writer on another host is not a process here,
so it would look dead). A cache folder on a network or cluster filesystem (read from the
kernel's mount table) or named shared by COMPTRUST_SHARED_CACHE therefore runs in a shared
mode, and every temp name carries its owner's host as well as its process id.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import TrustError, one_line

SHARED_CACHE_ENV = "COMPTRUST_SHARED_CACHE"
# Filesystems that several machines mount at once (network, cluster and VM-share filesystems).
NETWORK_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "lustre", "gpfs", "beegfs", "ceph",
    "glusterfs", "9p", "virtiofs", "ocfs2", "gfs2", "panfs", "orangefs", "pvfs2", "wekafs", "quobyte",
    "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.cephfs", "fuse.s3fs", "fuse.gcsfuse",
    "fuse.rclone", "fuse.juicefs", "fuse.moosefs", "fuse.mfs", "fuse.lizardfs", "fuse.beegfs",
})
# A temp entry owned by a process on another host is removed only once nothing in it has changed
# for this long: its owner cannot be asked whether it is alive, and a large build (a compressed
# 70B model on a CPU) may leave its folder untouched for many hours before writing its files.
FOREIGN_STALE_SECONDS = 7 * 24 * 3600
_INITIAL_PID_NAMESPACE = 0xEFFFFFFC  # the inode Linux gives the first pid namespace
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str


def parse_mounts(text: str) -> list[Mount]:
    """Mounts listed in /proc/self/mountinfo or /proc/mounts text (either layout), in order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if " - " in line and len(fields) >= 7:  # mountinfo: ... mount-point options ... - fstype source
            after = line.split(" - ", 1)[1].split()
            point, fstype = fields[4], after[0] if after else ""
        elif len(fields) >= 3:  # mounts: source mount-point fstype options dump pass
            point, fstype = fields[1], fields[2]
        else:
            continue
        mounts.append(Mount(_OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), point), fstype))
    return mounts


def mount_of(path: str, mounts: Iterable[Mount]) -> Mount | None:
    """The mount holding absolute `path`: the longest mount point above it, the later of equal
    ones (a later mount on the same point hides the earlier)."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        if point == "/" or path == point or path.startswith(point + "/"):
            if best is None or len(point) >= len(best.point.rstrip("/") or "/"):
                best = mount
    return best


def network_fstype(path: str, mounts_text: str) -> str | None:
    """The filesystem type under absolute `path` when several hosts may mount it, else None."""
    mount = mount_of(path, parse_mounts(mounts_text))
    return mount.fstype if mount is not None and mount.fstype in NETWORK_FSTYPES else None


def _mount_table() -> str:
    for source in ("/proc/self/mountinfo", "/proc/mounts"):
        try:
            return Path(source).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            continue
    return ""  # not Linux: nothing to detect (COMPTRUST_SHARED_CACHE=1 says it)


def _existing(path: Path) -> str:
    """`path` with its symlinks resolved, from its nearest existing folder (it may not exist yet)."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return str(candidate.resolve())
    return str(path)


def shared_reason(
    path: Path, environ: Mapping[str, str] | None = None, mounts_text: Callable[[], str] = _mount_table,
) -> str | None:
    """Why the cache at `path` is shared by hosts (one phrase), or None for a local cache.

    COMPTRUST_SHARED_CACHE=1 (yes, on, true) says it is, =0 (no, off, false) that it is not;
    unset or auto: it is when the mount table puts `path` on a network or cluster filesystem."""
    environ = os.environ if environ is None else environ
    setting = environ.get(SHARED_CACHE_ENV, "auto").strip().lower()
    if setting in ("1", "yes", "on", "true"):
        return f"{SHARED_CACHE_ENV}={environ[SHARED_CACHE_ENV]}"
    if setting in ("0", "no", "off", "false"):
        return None
    if setting not in ("", "auto"):
        raise TrustError(f"{SHARED_CACHE_ENV}={one_line(environ[SHARED_CACHE_ENV])}: use 1 (the cache folder is "
                         "shared by hosts), 0 (it is not) or auto (read the mount table)")
    fstype = network_fstype(_existing(path), mounts_text())
    return f"on a {fstype} filesystem" if fstype else None


# ------------------------------------------------------------------ owners of temp entries
@dataclass(frozen=True)
class Owner:
    """Who made a temp entry: a process id on a host (None: a name without one, from this host)."""

    pid: int
    host: str | None


def host_tag() -> str:
    """This machine's name as it goes into a file name ([A-Za-z0-9_-], at most 64 characters),
    with the pid namespace where it is not the first one: containers sharing a hostname but not
    process ids are different hosts here."""
    tag = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:64] or "_"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = _INITIAL_PID_NAMESPACE
    return tag if namespace == _INITIAL_PID_NAMESPACE else f"{tag}-ns{namespace:x}"


def owner_token(pid: int | None = None) -> str:
    """`PID@HOST`: how a temp name says who made it (see `parse_owner`)."""
    return f"{os.getpid() if pid is None else pid}@{host_tag()}"


def parse_owner(token: str) -> Owner | None:
    """The owner an `owner_token` (or a bare pid, as names carried before) names; None: not one."""
    pid, at, host = token.partition("@")
    if not (pid.isascii() and pid.isdecimal()) or (at and not re.fullmatch(r"[A-Za-z0-9_-]+", host)):
        return None
    return Owner(int(pid), host if at else None)


def owner_gone(owner: Owner, idle_seconds: float, pid_alive: Callable[[int], bool], this_host: str) -> bool:
    """Whether `owner`'s temp entry (unchanged for `idle_seconds`) is an orphan to remove.

    An owner on this host is gone when its process is; an owner on another host is never judged
    by its process id (that id means nothing here), only by FOREIGN_STALE_SECONDS of inactivity."""
    if owner.host is None or owner.host == this_host:
        return not pid_alive(owner.pid)
    return idle_seconds > FOREIGN_STALE_SECONDS
