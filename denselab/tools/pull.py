"""A student's fetch of the class's results: `dvc pull`, tried again when the server drops the connection.

A class starts together: forty `dvc pull`s reach the lab server in the same minute, and OpenSSH drops new
connections at random once too many handshakes are pending (its MaxStartups), or refuses a channel past its
MaxSessions (docs/class.md gives the server settings that avoid both). A dropped connection is not the student's
fault and costs nothing to retry: DVC writes an object to its cache only once it has all of it, and checks the
workspace out only after every object came. So this fetch tries again, a bounded number of times, waiting longer
each time and by a random share, so that forty students do not come back in step; one line per retry names the
remote. Any other error (a missing object, a refused key) stops it at once, naming the remote, or the key file
when this clone's key cannot be read.

    python -m denselab.tools.pull report explain describe aggregate judge replicate
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from denselab.core.cli import StageError, argument_parser, bounded, stage_main
from denselab.core.remote import dvc_root, first_error, remote_name, run_dvc
from denselab.tools.keys import key_problem, remote_settings

# What DVC (through asyncssh) says when the server dropped or cut the connection, not when it refused the user.
TRANSIENT = re.compile(
    r"Connection lost|Connection reset|Connection closed|Broken pipe|Can't create any SFTP connections"
    r"|SSH protocol banner|kex_exchange_identification|timed out",
    re.IGNORECASE,
)
# DVC's warning when the remote lacks objects the commit names: a teacher who pushed the commit before its results.
MISSING = "do not exist neither locally nor on remote"
RETRIES = 5  # waits of about 2, 4, 8, 16, 32 s: a minute and a half at most before giving up
MAX_RETRIES = 10  # the tenth wait is about 17 minutes: past it, the server is down, not busy
FIRST_WAIT = 2.0


def retry_wait(attempt: int, first: float = FIRST_WAIT, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling from `first`, times 0.5 to 1.5 at
    random, which spreads the students a dropped wave sends back."""
    return first * 2 ** (attempt - 1) * (0.5 + draw())


def pull(
    targets: list[str],
    root: Path,
    retries: int = RETRIES,
    first_wait: float = FIRST_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """`dvc pull TARGETS` in the project at `root`, tried again up to `retries` times while the failure is a
    dropped connection; returns how many retries it took. Raises StageError naming the remote when the fetch
    fails for good."""
    attempt = 0
    while True:
        out = run_dvc("pull", *targets, cwd=root)
        if out.returncode == 0:
            return attempt
        error = first_error(out.stderr + out.stdout)
        if MISSING in out.stderr + out.stdout:  # DVC's own line ends in a list of targets, on the lines after it
            error = "it lacks files this commit names (has the teacher's `dvc push` finished?)"
        dropped = bool(TRANSIENT.search(error))
        if not dropped and (problem := key_problem(remote_settings(root))):
            raise StageError(problem)
        if attempt >= retries or not dropped:
            gave_up = f" after {attempt} retries" if attempt else ""
            raise StageError(f"cannot fetch from {remote_name(root)}{gave_up}: {error}")
        attempt += 1
        wait = retry_wait(attempt, first_wait)
        print(
            f"{remote_name(root)} dropped the connection ({error}); retry {attempt} of {retries} in {wait:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        sleep(wait)


@stage_main
def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m denselab.tools.pull [TARGETS...] [--retries N]`; exit code 2 when the fetch fails."""
    parser = argument_parser(__spec__, __doc__)
    parser.add_argument("targets", nargs="*", help="what to fetch, as `dvc pull` takes it (default: everything)")
    parser.add_argument(
        "--retries",
        type=bounded(int, 0, MAX_RETRIES),
        default=RETRIES,
        help=f"retries after a dropped connection, 0 to {MAX_RETRIES} (default {RETRIES})",
    )
    args = parser.parse_args(argv)
    root = dvc_root(Path.cwd())
    if root is None:
        raise StageError("not in a DVC project: run this inside the class repository's clone")
    pull(args.targets, root, args.retries)


if __name__ == "__main__":
    main()
