"""The report page: a table that says what its ± is and scrolls, failures with their errors, the
environment capsule, and the sweep figures keeping grid and search apart."""
from __future__ import annotations

from pathlib import Path

import analysis


def test_report_of_a_grid_with_failures(known_db: str, tmp_path: Path) -> None:
    page = analysis.build_report("grid", tmp_path, db=known_db).read_text()
    assert "mean ± sd (sample standard deviation, ddof 1)" in page and "<div class='scroll'><table>" in page
    # lr=0.01, tau_m=10: 0.80 and 0.86, mean 0.83, sd sqrt(2 * 0.03^2) = 0.042
    assert "<td>0.83 ± 0.042</td>" in page
    assert "<th title='model.layers[0].kernel.tau_m'>tau_<wbr>m (ms)</th>" in page  # may wrap after _ only
    assert "Runs that did not complete (2)" in page and "FloatingPointError loss is NaN" in page
    assert "<h2>Environment</h2>" in page and "No environment capsule recorded" in page  # built with capsule {}
    assert (tmp_path / "summary.csv").is_file() and "final_val_acc_ci95" in (tmp_path / "summary.csv").read_text()
    assert "heatmap_grid_" in page and "search_" not in page


def test_report_of_a_grid_and_a_search(mixed_db: str, tmp_path: Path) -> None:
    page = analysis.build_report("mixed", tmp_path, db=mixed_db).read_text()
    assert "None: every run completed." in page
    assert "best_val_acc vs optimizer.lr, one line per model.layers[0].kernel.tau_m" in page
    assert "search samples are crosses, never joined" in page
    assert "a shaded band only where n &gt;= 3: the 95% bootstrap CI of the mean" in page


def test_environment_capsule_section() -> None:
    from analysis.report import _environment
    from experiment.store import environment_capsule

    capsule = environment_capsule()
    section = _environment(capsule)
    assert capsule["python"] in section and f"torch {capsule['packages']['torch']}" in section
    assert (capsule["git_sha"] or "unknown") in section


def test_show_says_what_its_plus_minus_is(known_db: str, capsys) -> None:
    import main

    assert main.main(["show", "demo", "--db", known_db]) == 0
    out = capsys.readouterr().out
    assert "demo (version 1): mean ± sd (sample standard deviation) over the n COMPLETED repeats of each trial" in out
    assert "0.85 ± 0.05" in out  # final_val_acc of lr=0.01 over its 3 COMPLETED repeats
