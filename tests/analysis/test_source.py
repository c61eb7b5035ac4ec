"""analysis opens the database read-only: nothing it does can write, or create a database."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import analysis
from experiment.store import DatabaseNotFound, ExperimentStore, RunStatus

ROOT = Path(__file__).resolve().parents[2]


def test_analysis_connection_refuses_writes(known_db: str) -> None:
    before = analysis.load_metrics("demo", db=known_db)
    with analysis.open_store(known_db) as store:
        run_id = int(analysis.load_runs("demo", db=store)["run_id"].iloc[0])
        with pytest.raises(PermissionError, match="read-only"):
            store.log_metrics(run_id, 0, {"val_acc": 0.0})
        with pytest.raises(PermissionError):
            store.open_experiment("intruder", "", 0, ".", {}, {})
        with pytest.raises(PermissionError):
            store.claim_run(run_id, "host", 1, claimable=[RunStatus.COMPLETED])
    after = analysis.load_metrics("demo", db=known_db)
    assert after.equals(before)
    assert "intruder" not in set(analysis.load_experiments(known_db)["name"])


def test_open_store_accepts_urls_paths_and_stores(known_db: str) -> None:
    path = known_db.removeprefix("sqlite:///")
    for db in (known_db, path, Path(path)):
        with analysis.open_store(db) as store:
            assert isinstance(store, ExperimentStore) and store.get_experiment("demo").version == 1
    with analysis.open_store(known_db) as store:
        assert analysis.open_store(store) is store


def test_missing_database_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    with pytest.raises(DatabaseNotFound):
        analysis.load_experiments(f"sqlite:///{missing}")
    assert not missing.exists()


def test_importing_analysis_leaves_matplotlib_and_scipy_unloaded() -> None:
    code = "import sys, analysis; print(sorted(m for m in ('matplotlib', 'scipy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
