"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb and pg_ctl in a temp folder.

The server listens on a Unix socket in its own data folder only (no TCP port, so nothing clashes
with another cluster on the machine) and is stopped and deleted afterwards. Run as root, the
binaries run as the ``postgres`` user (``initdb`` refuses root), through ``runuser``.

>>> binaries() is None or binaries().is_dir()
True
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

__all__ = ["Cluster", "binaries", "cluster", "missing_reason"]

TEST_SETTINGS = {
    # Tests throw the cluster away: durability buys nothing there, and costs each commit an fsync.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "60",
}
BENCHMARK_SETTINGS = {
    # Safe settings, like SQLite's synchronous=NORMAL: a crash loses at most the last commits.
    "synchronous_commit": "off",
    "max_connections": "60",
}


def _version(folder: Path) -> tuple[int, ...]:
    name = folder.parent.name
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (the newest Debian install)."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True):
        if os.access(folder / "initdb", os.X_OK):
            return folder
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    return None


def missing_reason() -> str | None:
    """Why no cluster can be started here, or ``None`` when one can."""
    if binaries() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0 and _postgres_user() is None:
        return "running as root without a 'postgres' user to run the server as"
    return None


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


class Cluster:
    """One running throwaway server; :meth:`url` names a database on it."""

    def __init__(self, folder: Path, user: str) -> None:
        self.folder, self.user = folder, user

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` over the cluster's Unix socket."""
        return f"postgresql://{self.user}@/{database}?host={quote(str(self.data), safe='/')}"


def _run(command: list[str], *, as_user: str | None, cwd: Path) -> None:
    if as_user is not None:
        command = ["runuser", "-u", as_user, "--", *command]
    # cwd: the server's user may not be allowed into the caller's folder (a checkout in /root)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")


@contextlib.contextmanager
def cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """Start a throwaway cluster, yield it, then stop it (immediately) and delete its folder."""
    folder_bin = binaries()
    if folder_bin is None:
        raise RuntimeError(missing_reason())
    runner: str | None = None
    user = pwd.getpwuid(os.geteuid()).pw_name
    folder = Path(tempfile.mkdtemp(prefix="sg-pg-"))
    if os.geteuid() == 0:
        account = _postgres_user()
        if account is None:
            raise RuntimeError(missing_reason())
        runner = user = account.pw_name
        os.chown(folder, account.pw_uid, account.pw_gid)
    data = folder / "data"
    options = {**TEST_SETTINGS, **(settings or {})}
    try:
        _run(
            [
                str(folder_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                user,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            as_user=runner,
            cwd=folder,
        )
        server_options = f"-c listen_addresses='' -k {data} " + " ".join(
            f"-c {key}={value}" for key, value in options.items()
        )
        _run(
            [
                str(folder_bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                server_options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            as_user=runner,
            cwd=folder,
        )
        try:
            yield Cluster(folder, user)
        finally:
            _run(
                [str(folder_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                as_user=runner,
                cwd=folder,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
