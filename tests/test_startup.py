"""What the command line imports: ``--help`` and ``--version`` only argparse, a ``run`` with
nothing left to do none of the heavy optional libraries (torch._dynamo, scipy.stats, MLflow,
matplotlib, Optuna, scikit-learn, pandas). Start-up times are measured by benchmarks/bench_startup.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import TINY_CONFIG, write_experiment

import main
from tools.version import SPIKELAB_VERSION

ROOT = Path(__file__).resolve().parents[1]
NOT_FOR_HELP = ("torch", "sqlalchemy", "mlflow", "pandas", "numpy", "yaml", "settings", "experiment")
NOT_FOR_A_NOOP_RUN = ("torch._dynamo", "scipy.stats", "mlflow", "matplotlib", "optuna", "sklearn", "pandas")

PROBE = """\
import json, sys
sys.path.insert(0, {root!r})
import main
try:
    code = main.main({argv!r})
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "loaded": sorted(m for m in {watch!r} if m in sys.modules)}}))
"""


def loaded_by(argv: list[str], watch: tuple[str, ...], cwd: Path) -> tuple[int, list[str], str]:
    """Run ``main.main(argv)`` in a fresh interpreter: its exit code, which of ``watch`` it
    imported, and its output before that report."""
    script = PROBE.format(root=str(ROOT), argv=argv, watch=watch)
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    *output, report = done.stdout.strip().splitlines()
    result = json.loads(report)
    return result["code"], result["loaded"], "\n".join(output) + done.stderr


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["--version"]])
def test_help_and_version_import_only_argparse(argv, tmp_path):
    code, loaded, output = loaded_by(argv, NOT_FOR_HELP, tmp_path)
    assert code == 0 and loaded == [], output
    assert ("usage: python main.py" in output) == (argv != ["--version"])


def test_version_prints_the_version_the_capsule_records(capsys):
    from experiment.store import environment_capsule

    with pytest.raises(SystemExit) as exit_:
        main.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"Spikelab {SPIKELAB_VERSION}"
    assert environment_capsule()["packages"]["spikelab"] == SPIKELAB_VERSION


def test_a_run_with_nothing_to_do_imports_no_heavy_library(tmp_path):
    config = TINY_CONFIG.replace("epochs: 2", "epochs: 1") + "scheduler: {type: StepLR, step_size: 1}\n"
    folder = write_experiment(tmp_path / "exp", config, experiment=f"name: tiny\nbase_dir: {tmp_path / 'out'}\n"
                                                                   "repeat: 1\nmlflow: {enabled: true}\n")
    assert main.main(["run", str(folder), "--no-progress", "--no-mlflow"]) == 0
    code, loaded, output = loaded_by(["run", str(folder), "--no-progress"], NOT_FOR_A_NOOP_RUN, tmp_path)
    assert code == 0, output
    assert "0 to run" in output and "skipping 1 completed run(s)" in output
    assert loaded == [], f"a run with nothing to do imported {loaded}"


def test_the_run_summary_has_the_numbers_of_analysis_summarize(tmp_path):
    """The table at the end of ``run`` (computed without pandas) agrees with analysis.summarize:
    COMPLETED runs only, one trial all FAILED, one with a single repeat (no std)."""
    import math

    import analysis
    from experiment.reporting import trial_summaries
    from experiment.store import SQLStore
    from settings.metrics import headline_summary

    trials = ("- name: a\n  repeat: 3\n- name: diverges\n  settings: {optimizer: {type: SGD, lr: 1.0e+38}}\n"
              "- name: once\n  repeat: 1\n  settings: {optimizer: {lr: 0.02}}\n")
    folder = write_experiment(tmp_path / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"), trials,
                              experiment=f"name: tiny\nbase_dir: {tmp_path / 'out'}\nrepeat: 2\n"
                                         "mlflow: {enabled: false}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 3
    with SQLStore(f"sqlite:///{tmp_path / 'out' / 'spikelab.db'}", readonly=True) as store:
        record = store.get_experiment("tiny")
        runs, summaries = store.runs(record.id), store.summaries(record.id)
        metrics = headline_summary(sorted({key for _, key, _ in summaries}))
        expected = analysis.summarize(record, metrics=metrics, db=store).to_dict(orient="records")
    got = trial_summaries(runs, summaries, metrics)
    assert [r["trial"] for r in got] == [r["trial"] for r in expected] == ["a", "diverges", "once"]
    assert metrics and [r[f"{metrics[0]}_n"] for r in got] == [3, 0, 1]
    for mine, theirs in zip(got, expected):
        for key, value in mine.items():
            if key != "trial":
                assert (math.isnan(value) and math.isnan(theirs[key])) or math.isclose(value, theirs[key],
                                                                                     rel_tol=1e-12), key
