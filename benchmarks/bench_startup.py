"""Start-up cost of the command line: ``python main.py --help``, a ``run`` of a finished
configs/default (nothing left to do), and the time from process start to the first epoch of a
fresh configs/default (its metrics in the database).

    python benchmarks/bench_startup.py [--repeats 7] [--fresh-repeats 3] [--root CHECKOUT]

Every figure is the wall time of a new ``python`` process from its start (min and median over
the repeats), with its CPU time (user + system, from the kernel's accounting of the child: less
sensitive than wall time to other processes on a shared machine). ``--root`` measures another
checkout (``git archive <sha> | tar -x -C /tmp/before``) for before/after comparisons; the
outputs go to a temporary folder, never to the checkout's outputs/.
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spawn(argv: list[str], cwd: Path, quiet: bool = True) -> subprocess.Popen:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=out, stderr=out)


def reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for ``proc``: its exit status and CPU seconds (user + system)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process running to its end."""
    start = time.perf_counter()
    proc = spawn(argv, cwd)
    code, cpu = reap(proc)
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return wall, cpu


def first_epoch(root: Path, work: Path, extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """Seconds from process start until a fresh configs/default has the metrics of epoch 0 (the
    untrained evaluation) and of epoch 1 (the first trained epoch) in its database; the run is then
    interrupted (SIGINT). ``extra``: more arguments of ``run``."""
    base = Path(tempfile.mkdtemp(dir=work))
    db = base / "outputs" / "spikelab.db"
    argv = [str(root / "main.py"), "run", str(root / "configs" / "default"), "--no-progress",
            "--set", f"experiment.base_dir={base / 'outputs'}", *extra]
    start = time.perf_counter()
    proc = spawn(argv, base)
    seen: dict[int, float] = {}
    try:
        while 1 not in seen:
            if proc.poll() is not None:
                raise SystemExit(f"the quick tour ended (exit {proc.returncode}) before its first epoch")
            time.sleep(0.01)
            if not db.exists():
                continue
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    epochs = {row[0] for row in con.execute("SELECT DISTINCT epoch FROM metric")}
            except sqlite3.OperationalError:  # the schema is not there yet
                continue
            now = time.perf_counter() - start
            for epoch in (0, 1):
                if epoch in epochs:
                    seen.setdefault(epoch, now)
    finally:
        proc.send_signal(signal.SIGINT)
        reap(proc)
    return seen[0], seen[1]


def row(label: str, walls: list[float], cpus: list[float] | None = None) -> str:
    cpu = f"{min(cpus):.2f} s | {statistics.median(cpus):.2f} s" if cpus else "- | -"
    return f"| {label} | {min(walls):.2f} s | {statistics.median(walls):.2f} s | {cpu} | {len(walls)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs of --help and of the no-op run")
    parser.add_argument("--fresh-repeats", type=int, default=3, help="fresh quick tours for time-to-first-epoch")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        finished = work / "finished"
        noop = [str(root / "main.py"), "run", str(root / "configs" / "default"), "--no-progress",
                "--set", f"experiment.base_dir={finished / 'outputs'}"]
        finished.mkdir()
        timed(noop, finished)  # trains the quick tour once (MLflow mirror on, as configured)
        cases = {"python -c 'import torch' (the floor of any command that validates)": ["-c", "import torch"],
                 "python main.py --help": [str(root / "main.py"), "--help"],
                 "python main.py --version": [str(root / "main.py"), "--version"],
                 "python main.py run configs/default (finished: nothing to do)": noop}
        lines = []
        for label, argv in cases.items():
            if label.endswith("--version") and not (root / "tools" / "version.py").exists():
                continue
            timed(argv, finished)  # warm-up (file cache, .pyc)
            samples = [timed(argv, finished) for _ in range(args.repeats)]
            lines.append(row(label, [w for w, _ in samples], [c for _, c in samples]))
        for extra in ((), ("--no-mlflow",)):
            firsts = [first_epoch(root, work, extra) for _ in range(args.fresh_repeats)]
            label = "fresh configs/default" + "".join(f" {word}" for word in extra)
            lines.append(row(f"{label}: process start to epoch 0's metrics in the DB", [a for a, _ in firsts]))
            lines.append(row(f"{label}: process start to epoch 1's metrics in the DB", [b for _, b in firsts]))
    print(f"checkout {root}; load average {os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} cores")
    print("| command | wall min | wall median | CPU min | CPU median | runs |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
