"""``python main.py export-nir RUN --out FILE``: a trained run's model as a NIR file that imports
back to the same network; what cannot be exported is one ``error:`` line and exit 2."""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from testkit import TINY_CONFIG, write_experiment

import main
from experiment.store import SQLStore
from experiment.trained_run import load_trained_run
from network.interop import from_nir


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """One run of the tiny experiment (Dense LIF -> LeakyIntegrator, one epoch): its folder and db."""
    root = tmp_path_factory.mktemp("nir")
    db = f"sqlite:///{root / 'own.db'}"
    folder = write_experiment(root / "exp", TINY_CONFIG.replace("epochs: 2", "epochs: 1"),
                              experiment=f"name: tiny\nbase_dir: {root / 'out'}\ndb: {db}\nrepeat: 1\n"
                                         "mlflow: {enabled: false}\n")
    assert main.main(["run", str(folder), "--no-progress"]) == 0
    return root / "out" / "tiny" / "base" / "repeat_0", db


def one_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_the_exported_file_imports_to_the_trained_network(trained, tmp_path, capsys):
    run_dir, _ = trained
    out = tmp_path / "model.nir"
    capsys.readouterr()
    assert main.main(["export-nir", str(run_dir), "--out", str(out), "--checkpoint", "last"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: ") and "approximated: model.layers[0].kernel" in printed  # soft reset
    run = load_trained_run(run_dir, "last")
    imported = from_nir(nir.read(out))
    x = run.inputs("test", np.arange(8))
    with torch.no_grad():
        mine, theirs = run.model(x), imported(x)
    assert float(mine.traces[0].out.sum()) > 0
    assert torch.equal(mine.traces[0].out, theirs.traces[0].out)
    assert torch.equal(mine.scores, theirs.scores)


def test_a_run_id_is_found_in_the_database(trained, tmp_path, capsys):
    run_dir, db = trained
    with SQLStore(db, readonly=True) as store:
        (run,) = store.runs(store.get_experiment("tiny").id)
    out = tmp_path / "by_id.nir"
    assert main.main(["export-nir", str(run.id), "--db", db, "--out", str(out), "--dt", "0.001"]) == 0
    assert "dt = 0.001" in capsys.readouterr().out
    assert nir.read(out).metadata["spikelab"]["dt"] == pytest.approx(0.001)
    assert main.main(["export-nir", "999", "--db", db, "--out", str(out)]) == 2
    assert "no run with id 999" in one_error(capsys)


def test_what_cannot_be_exported_is_one_error_line(trained, tmp_path, capsys):
    run_dir, _ = trained
    out = tmp_path / "model.nir"
    assert main.main(["export-nir", str(tmp_path), "--out", str(out)]) == 2
    assert one_error(capsys).startswith(f"error: RUN: {tmp_path} is not a run folder")
    assert main.main(["export-nir", str(run_dir), "--out", str(tmp_path)]) == 2
    assert one_error(capsys).startswith("error: --out: must be a file name")
    assert main.main(["export-nir", str(run_dir), "--out", str(out), "--strict"]) == 2
    assert "strict: NIR cannot represent model.layers[0].kernel: its reset (soft" in one_error(capsys)
    assert main.main(["export-nir", str(run_dir), "--out", str(out), "--checkpoint", "nope.pt"]) == 2
    one_error(capsys)
    assert not out.exists()
