"""The notebooks of analysis/notebooks/ execute (nbclient, a real kernel, started outside the
repository) against small databases made here; a cell that raises fails the test."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "analysis" / "notebooks"


def execute(name: str, experiment: str, db: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every cell of notebook ``name``; returns the text the cells printed or displayed."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SPIKELAB_EXPERIMENT", experiment)
    monkeypatch.setenv("SPIKELAB_DB", db)
    monkeypatch.setenv("SPIKELAB_ROOT", str(ROOT))  # not pip-installed here: the notebook's documented fallback
    monkeypatch.setenv("SPIKELAB_NOTEBOOK_OUT", str(cwd / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_tour_runs_against_a_db_whose_best_run_has_a_recording(tour_db: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    text = execute("tour.ipynb", "nbtour", tour_db, tmp_path, monkeypatch)
    assert "lr=0.1: best_val_acc 0.9 ± 0.05 (± sd, n=3); 95% bootstrap CI" in text
    assert "Welch t =" in text and "Cliff's delta = 1" in text
    assert (tmp_path / "figures" / "learning_curve_val_acc.png").is_file()
    assert (tmp_path / "figures" / "sweep.png").is_file()


def test_tour_says_when_there_is_no_recording(known_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = execute("tour.ipynb", "demo", known_db, tmp_path, monkeypatch)
    assert "no recording: the best run's folder out/lr=0.01/repeat_2 is not on this machine" in text
    assert "lr=0.01: best_val_acc 0.87 ± 0.05 (± sd, n=3)" in text


def test_capacity_notebook(capacity_nb_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = execute("tempotron_capacity.ipynb", "capacity", capacity_nb_db, tmp_path, monkeypatch)
    assert "N = 100, interpolate: alpha_c =" in text and "N = 100, logistic: alpha_c =" in text
    assert (tmp_path / "figures" / "capacity_curve.png").is_file()
