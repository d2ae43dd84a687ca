"""What this clone may do on its project's DVC remote, said in one line that names the remote.

    python -m denselab.tools.access            # in the project; exit code 0 when the remote can be read

DVC's own failures on a remote name the host or the storage path, and a refused push prints a line per object
(docs/class.md, "A class on one lab server"). A student, or a teacher setting up a class, wants one answer: can this
clone reach the class remote with its key, and may it write there? This connects as DVC does (DVC's own remote
configuration and file system, so the same key, host and port), lists the remote's folder, then writes and
removes one empty probe file. No stage imports this module: it is a command for people.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from denselab.core.cli import argument_parser
from denselab.core.remote import dvc_root, first_error, remote_name, run_dvc
from denselab.tools.keys import key_problem, remote_settings

# The probe's name says what it is, should anyone see it on the server.
PROBE_PREFIX = ".denselab-write-check-"
# What the check calls on DVC's file system (dvc_objects' FileSystem, fsspec's names).
FS_METHODS = ("exists", "ls", "join", "pipe_file", "rm_file")


def _reason(exc: BaseException) -> str:
    """An error as one line: its message (asyncssh's say who was refused where), else its type."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _remote_errors() -> tuple[type[BaseException], ...]:
    """What reaching a remote raises: OSError (refused, timed out, denied), and asyncssh's own errors when sshfs
    lets one through (a key it cannot read among them: `main` checks the key first, naming it)."""
    try:
        from asyncssh import Error, KeyImportError
    except ImportError:
        return (OSError,)
    return (OSError, Error, KeyImportError)


def _refused_key(exc: BaseException) -> bool:
    """Whether asyncssh (DVC's SSH file system runs on it) refused the login: the error, or what it was raised
    from (sshfs turns it into a PermissionError)."""
    try:
        from asyncssh import PermissionDenied
    except ImportError:
        return False
    chain: BaseException | None = exc
    seen = set()
    while chain is not None and id(chain) not in seen:
        if isinstance(chain, PermissionDenied):
            return True
        seen.add(id(chain))
        chain = chain.__cause__ or chain.__context__
    return False


def _cannot_read(exc: BaseException) -> str:
    if _refused_key(exc):
        return f"the server refused this clone's key: {_reason(exc)}"
    if isinstance(exc, ConnectionError | TimeoutError) or (isinstance(exc, OSError) and exc.errno is not None):
        return f"cannot connect: {_reason(exc)}"
    return f"cannot read it: {_reason(exc)}"


def _open_remote(root: Path):
    """The default remote's file system and path, as DVC itself builds them (`Repo.cloud.get_remote`), or None
    when this DVC's Python API is not the one this was written for."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        get_remote = getattr(getattr(repo, "cloud", None), "get_remote", None)
        if get_remote is None:
            return None
        remote = get_remote()
    fs, path = getattr(remote, "fs", None), getattr(remote, "path", None)
    if not isinstance(path, str) or not all(callable(getattr(fs, m, None)) for m in FS_METHODS):
        return None
    return fs, path


def check_with_dvc_fs(fs, path: str) -> tuple[bool, str]:
    """Read (list the remote's folder `path`) and write (an empty probe, then removed) through DVC's file system
    `fs`. Returns whether the remote could be read, and what was found, in a few words."""
    errors = _remote_errors()
    try:
        if not fs.exists(path):
            return True, "reachable, but nothing is there yet (`dvc push` creates it)"
        fs.ls(path)
    except errors as exc:  # a failure to reach or read is the answer, not a crash
        return False, _cannot_read(exc)
    probe = fs.join(path, PROBE_PREFIX + secrets.token_hex(8))
    try:
        fs.pipe_file(probe, b"")
    except errors as exc:
        return True, f"may read, may not write ({_reason(exc)}): `dvc pull` works, `dvc push` is refused"
    try:
        fs.rm_file(probe)
    except errors as exc:
        return True, f"may read and write, but could not remove the probe {probe} ({_reason(exc)})"
    return True, "may read and write: `dvc pull` and `dvc push` work"


def check_with_dvc_cli(root: Path) -> tuple[bool, str]:
    """The same question through DVC's command line alone (`dvc ls-url remote://NAME/`, with the project's remote
    configuration): whether the remote can be read. It cannot tell whether a push would be refused."""
    name = run_dvc("remote", "default", cwd=root).stdout.strip()
    if not name:
        return False, "no default remote"
    out = run_dvc("ls-url", f"remote://{name}/", cwd=root)
    if out.returncode == 0:
        return True, "can be read (write access not checked)"
    return False, _cannot_read_text(first_error(out.stderr + out.stdout))


def _cannot_read_text(message: str) -> str:
    if "Permission denied for user" in message:
        return f"the server refused this clone's key: {message}"
    return f"cannot read it: {message}"


def check(root: Path) -> tuple[bool, str]:
    """One line on the project's default remote: its name and URL, then whether it can be read and written.
    Falls back to DVC's command line (read access only) when DVC's Python API is not the one this was written
    for (`Repo.cloud.get_remote` returning an object with `fs` and `path`), and says so."""
    from dvc.exceptions import DvcException

    name = remote_name(root)
    try:
        opened = _open_remote(root)
    except ImportError:
        opened = None
    except DvcException as exc:  # no remote set, or a bad URL: DVC's config errors, already one line
        return False, f"{name}: {_reason(exc)}"
    readable, found = check_with_dvc_fs(*opened) if opened else check_with_dvc_cli(root)
    return readable, f"{name}: {found}"


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m denselab.tools.access [PROJECT]`; exit code 1 when the remote cannot be read, 2 when this
    clone's key cannot be (or PROJECT is in no DVC project)."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument(
        "project", nargs="?", type=Path, default=Path.cwd(), help="a folder of the project (default: here)"
    )
    start = parser.parse_args(argv).project
    root = dvc_root(start)
    if root is None:
        print(f"error: {start} is not in a DVC project", file=sys.stderr)
        raise SystemExit(2)
    problem = key_problem(remote_settings(root))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    readable, line = check(root)
    print(line)
    raise SystemExit(0 if readable else 1)


if __name__ == "__main__":
    main()
