"""A class of N students fetching the report from one lab server in the same moment (docs/class.md).

    python benchmarks/class_load.py                  # N = 10, 20, 40; about 15 minutes on 2 cores
    python benchmarks/class_load.py --students 40 --settings recommended --fetch denselab.tools.pull

The teacher's project is a tiny build (tests/project.py) pushed to a real OpenSSH server on loopback
(tests/sshd.py), first with the server's stock settings, then with those docs/class.md recommends. For each N,
each settings and each fetch command (DVC's `dvc pull`, and `python -m denselab.tools.pull`, which retries a dropped
connection), N fresh clones fetch the report and what it is made of, all started at once; their first
connections reach sshd in the same instant, as forty machines' would (tests.classroom.Gate), where forty
processes on this machine's two cores would connect one after another. Per student: did the
report arrive, identical to the teacher's; seconds; bytes fetched; the error line. One table row per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.classroom import DVC_PULL, FETCH, RECOMMENDED_SSHD, REPORT, Classroom, Fetch
from tests.fixtures import sha256
from tests.project import build
from tests.sshd import ssh_server

SETTINGS = {"stock": "", "recommended": RECOMMENDED_SSHD}
FETCHES = {"dvc pull": DVC_PULL, "denselab.tools.pull": FETCH}
# The teacher's project: the tiny build the class tests share (three exercises, one seed of ex1 in the study).
TEACHER = {"exercises": ("ex1", "ex2", "ex5"), "study": {"seeds": [1], "exercises": ["ex1"]}}


def row(n: int, settings: str, fetch: str, results: list[Fetch], report: str | None, dropped: int) -> dict:
    """One line of the table: how many students got the teacher's report, and how long they took."""
    ok = [r for r in results if r.ok and r.report == report]
    seconds = [r.seconds for r in results]
    errors = sorted({r.error for r in results if r.error})
    return {
        "students": n,
        "settings": settings,
        "fetch": fetch,
        "succeeded": len(ok),
        "failed": n - len(ok),
        "dropped": dropped,
        "retries": sum(r.retries for r in results),
        "median_s": round(statistics.median(seconds), 1),
        "slowest_s": round(max(seconds), 1),
        "fetched_kb": round(statistics.median(r.cached for r in results) / 1024),
        "errors": errors,
    }


def drops(log: Path) -> int:
    """Connections sshd has dropped past MaxStartups, by its log."""
    return log.read_text().count("past MaxStartups")


def table(rows: list[dict]) -> str:
    lines = [
        "| N | server settings | fetch | succeeded | failed | dropped by sshd | retries | median s | slowest s | kB each |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['students']} | {r['settings']} | {r['fetch']} | {r['succeeded']} | {r['failed']} | "
            f"{r['dropped']} | {r['retries']} | {r['median_s']} | {r['slowest_s']} | {r['fetched_kb']} |"
        )
    errors = sorted({e for r in rows for e in r["errors"]})
    return "\n".join(lines + [""] + [f"- error seen: {e}" for e in errors])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--fetch", nargs="+", choices=list(FETCHES), default=list(FETCHES))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="denselab-class-") as tmp:
        work = Path(tmp)
        print("building the teacher's tiny project ...", file=sys.stderr, flush=True)
        (work / "teacher").mkdir()
        teacher = build(work / "teacher", **TEACHER)
        report = sha256(teacher.path / REPORT)
        rows = []
        with ssh_server(work / "server") as server:
            classroom = Classroom(teacher, server, work / "class")
            for settings in args.settings:
                server.configure(SETTINGS[settings])
                for n in args.students:
                    for fetch in args.fetch:
                        case = f"{n}-{settings}-{fetch}".replace(" ", "_")
                        gate = classroom.gate(n)
                        clones = [classroom.enrol(f"{case}-{i:02d}", gate) for i in range(n)]
                        before = drops(server.home / "sshd.log")
                        results = classroom.fetch_all(clones, FETCHES[fetch])
                        gate.close()
                        dropped = drops(server.home / "sshd.log") - before
                        rows.append(row(n, settings, fetch, results, report, dropped))
                        print(table(rows[-1:]).splitlines()[2], file=sys.stderr, flush=True)
        print(table(rows))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
