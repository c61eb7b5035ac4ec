"""Spikelab command line: ``python main.py [command] ...`` (``python main.py --help``)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys

from tools.locations import DEFAULT_DB
from tools.version import SPIKELAB_VERSION

EXIT_OK, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130
DEFAULT_EXPERIMENT = "configs/default"
RUN_DB_HELP = "database URL (default: the experiment's db, else sqlite:///<base_dir>/spikelab.db)"
DB_HELP = (f"database URL (default: {DEFAULT_DB}); an experiment whose experiment.yaml sets db or base_dir is "
           "read with the --db URL that `run` prints")
VERSION_HELP = "experiment version (default: the latest; run --fresh starts a new one)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Spikelab: train spiking neural networks described in four YAML files and record every "
                    "experiment, trial, repeat, parameter and metric in a database. Without a command, runs the "
                    f"bundled quick tour ({DEFAULT_EXPERIMENT}) and prints its summary.",
        epilog="Exit codes: 0 all runs completed, 2 invalid input (nothing was run or written), "
               "3 some runs FAILED or not finished (the others completed), 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"Spikelab {SPIKELAB_VERSION}",
                        help="print the Spikelab version and exit")
    sub = parser.add_subparsers(dest="command", metavar="command")

    run = sub.add_parser("run", help="train every trial x repeat of an experiment folder",
                         description="Validate the four YAML files of DIR (every trial, every sweep point), record "
                                     "the experiment in the database and train every run that is not COMPLETED yet "
                                     "(PENDING, INTERRUPTED, STALE, and FAILED up to max_retries). Running the same "
                                     "command again resumes; interrupted runs continue from their last checkpoint.")
    run.add_argument("dir", help="experiment folder (config.yaml, env.yaml, experiment.yaml, trials.yaml, "
                                 "or a config/ subfolder holding them, such as outputs/<experiment>)")
    _add_set(run)
    run.add_argument("--trial", action="append", default=[], metavar="NAME",
                     help="run only this trial or sweep point (repeatable)")
    run.add_argument("--db", help=RUN_DB_HELP)
    run.add_argument("--n-jobs", type=int, metavar="N", help="parallel worker processes (default: experiment.yaml)")
    run.add_argument("--fresh", action="store_true", help="start a new version of the experiment instead of resuming")
    run.add_argument("--retry-failed", action="store_true", help="run FAILED runs again even past max_retries")
    run.add_argument("--extend", action="store_true",
                     help="with --set epochs=N: train the selected COMPLETED runs on to N epochs from their last "
                          "checkpoint, as the same runs (metric rows appended)")
    run.add_argument("--no-mlflow", action="store_true", help="do not mirror this session to MLflow")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    status = sub.add_parser("status", help="run counts per state and trial; failures with their reasons")
    status.add_argument("experiment", nargs="?", help="experiment name (default: every experiment)")
    status.add_argument("--db", help=DB_HELP)
    status.add_argument("--version", type=int, metavar="N", help=VERSION_HELP)
    status.add_argument("--json", action="store_true", help="one JSON document on stdout")

    lst = sub.add_parser("list", help="the experiments in the database")
    lst.add_argument("--db", help=DB_HELP)
    lst.add_argument("--json", action="store_true", help="one JSON document on stdout")

    show = sub.add_parser("show", help="per trial: mean/std/n of final and best metrics over repeats")
    show.add_argument("experiment", help="experiment name")
    show.add_argument("--db", help=DB_HELP)
    show.add_argument("--version", type=int, metavar="N", help=VERSION_HELP)
    show.add_argument("--json", action="store_true", help="one JSON document on stdout")
    show.add_argument("--top", type=int, metavar="N", help="also list the N best runs")
    show.add_argument("--metric", default=None, metavar="M",
                      help="summary metric to rank by (default: best_val_acc; losses, spikes and times rank "
                           "lowest first; --metric alone: --top 5)")

    export = sub.add_parser("export", help="write a CSV: one row per trial (sweep point) or per run")
    export.add_argument("experiment", help="experiment name")
    export.add_argument("--csv", required=True, metavar="FILE", help="output file")
    export.add_argument("--per-run", action="store_true", help="one row per run instead of per trial")
    export.add_argument("--db", help=DB_HELP)
    export.add_argument("--version", type=int, metavar="N", help=VERSION_HELP)

    report = sub.add_parser("report", help="plots and an HTML summary of an experiment",
                            description="Write learning curves, metric-vs-parameter plots (a heatmap for a 2-D "
                                        "sweep), model-family figures and index.html with the summary table.")
    report.add_argument("experiment", help="experiment name")
    report.add_argument("--out", metavar="DIR", help="output folder (default: outputs/<experiment>/report/)")
    report.add_argument("--db", help=DB_HELP)
    report.add_argument("--version", type=int, metavar="N", help=VERSION_HELP)

    config = sub.add_parser("config", help="print the fully resolved config of every trial",
                            description="Print the fully resolved config (defaults and env values filled in) "
                                        "of every trial and sweep point, as YAML.")
    config.add_argument("dir", help="experiment folder")
    _add_set(config)
    config.add_argument("--trial", action="append", default=[], metavar="NAME",
                        help="only this trial or sweep point (repeatable)")
    config.add_argument("--native", action="store_true",
                        help="print the folder's four files in the native schema instead (the translation of an "
                             "original-framework folder, docs/legacy_yaml.md): save each section as the file it "
                             "names")

    evaluate = sub.add_parser("eval", help="evaluate a saved run on its test split",
                              description="Loss and accuracy of a saved run's checkpoint on one split; for a "
                                          "first-spike model also its figures (output and hidden spike times, "
                                          "weights, confusion matrix, the Yin-Yang decision map; docs/first_spike.md).")
    evaluate.add_argument("run_dir", help="a run folder, outputs/<experiment>/<trial>/repeat_<k>")
    evaluate.add_argument("--checkpoint", default="best",
                          help="best, last, epoch:N (checkpoints/epoch_<N>.pt, kept by ModelCheckpoint's keep_every "
                               "or keep; or best/last when taken after epoch N), or a path to a .pt file")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"],
                          help="data split to evaluate on (default: test)")
    evaluate.add_argument("--json", action="store_true", help="one JSON document on stdout")
    evaluate.add_argument("--plots-dir", metavar="DIR",
                          help="where the figures go (default: plots/eval_<split>_epoch_<N>/ in the run folder)")
    evaluate.add_argument("--no-plots", action="store_true", help="no figures, only the metrics")

    export_nir = sub.add_parser("export-nir", help="write a trained run's model as a NIR graph (docs/nir.md)",
                                description="Convert a trained run's network (Dense/Recurrent layers of LIF or LI "
                                            "neurons, a LeakyIntegrator or SpikeCount readout) into the "
                                            "Neuromorphic Intermediate Representation and write it with nir.write. "
                                            "Kernels NIR has no primitive for (RF, BRF, BHRF, ALIF, DEN) are "
                                            "refused.")
    export_nir.add_argument("run", metavar="RUN", help="a run folder, outputs/<experiment>/<trial>/repeat_<k>, or a "
                                                       "run id in the database")
    export_nir.add_argument("--out", required=True, metavar="FILE", help="the NIR file to write (HDF5, e.g. model.nir)")
    export_nir.add_argument("--checkpoint", default="best", help="best, last, or a path to a .pt file")
    export_nir.add_argument("--dt", type=float, metavar="DT",
                            help="the simulation step the time constants are written for, in their unit (default: "
                                 "the kernels' dt in ms; 0.001 writes seconds for a 1 ms step)")
    export_nir.add_argument("--strict", action="store_true",
                            help="refuse what NIR can only approximate (a soft reset) instead of noting it")
    export_nir.add_argument("--db", help=DB_HELP + " (to find a run id)")

    sync = sub.add_parser("mlflow-sync", help="rebuild an experiment's MLflow mirror from the database",
                          description="Make the MLflow mirror of EXPERIMENT agree with the database (the database is "
                                      "the truth): parent runs per trial with the repeat means, child runs per run "
                                      "with every metric, summary, status and the run folder's files; what the "
                                      "database does not know is deleted. Idempotent; works after the mirror was "
                                      "deleted (docs/mlflow.md).")
    sync.add_argument("experiment", help="experiment name")
    sync.add_argument("--db", help=DB_HELP)
    sync.add_argument("--version", type=int, metavar="N", help=VERSION_HELP)
    sync.add_argument("--tracking-uri", metavar="URI",
                      help="the MLflow tracking store (default: the experiment's, as `run` mirrored it: "
                           "mlflow.tracking_uri of experiment.yaml, else sqlite:///<base_dir>/mlflow.db)")
    sync.add_argument("--no-artifacts", action="store_true", help="do not log the run folders' files")

    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="upgrade: migrate the schema to the current version")
    db.add_argument("--db", help=DB_HELP)
    return parser


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                        help="override a setting, e.g. --set optimizer.lr=0.01 --set model.layers[0].kernel.tau_m=10 "
                             "--set env.T=200 --set experiment.seed=3 (values are YAML scalars; repeatable)")


def _resolve(args: argparse.Namespace):
    import pipeline  # noqa: F401  (registers every component)
    from settings.resolve import resolve_experiment

    resolved = resolve_experiment(args.dir, args.overrides, args.trial or None)
    if resolved.files.dialect is not None:
        print(f"note: {args.dir} is in the {resolved.files.dialect}'s layout; read through its translation into the "
              f"native schema (docs/legacy_yaml.md; `python main.py config {shlex.quote(args.dir)} --native` prints it)",
              file=sys.stderr)
    return resolved


def cmd_config(args: argparse.Namespace) -> int:
    from experiment.plan import config_hash
    from settings.yaml_io import dump_yaml

    from experiment.identity import check_distinct
    from experiment.outputs import check_outputs

    import dataclasses

    from experiment.stages import link_local

    experiment = _resolve(args)
    experiment = dataclasses.replace(experiment, trials=link_local(experiment.trials))  # the hashes `run` records
    check_distinct(experiment.trials)  # the same refusals `run` gives
    check_outputs(experiment.settings)
    if args.native:
        for name, content in experiment.files.native.items():
            print(f"# {name}\n{dump_yaml(content) if content is not None else ''}")
        return EXIT_OK
    for trial in experiment.trials:
        print(f"# trial {trial.name}  (repeat {trial.repeat}, config hash {config_hash(trial.config)[:12]})")
        if trial.sweep_point:
            print(f"# sweep point: {trial.sweep_point}")
        print(dump_yaml(trial.config))
    for entry in experiment.searches:
        search = entry.search
        print(f"# search {entry.name}: {search.get('method')}, {search['n_trials']} point(s) sampled while the "
              f"experiment runs, repeat {entry.repeat or experiment.settings.repeat}")
        for path, distribution in search["params"].items():
            print(f"#   {path}: {distribution}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from experiment.reporting import print_summary
    from experiment.session import run_experiment
    from tools.signals import install_sigterm_handler

    install_sigterm_handler()
    resolved = _resolve(args)
    if args.n_jobs is not None and args.n_jobs < 1:
        from settings.errors import ConfigError, ConfigIssue

        raise ConfigError(ConfigIssue("", f"must be >= 1, got {args.n_jobs}", "--n-jobs"))
    result = run_experiment(resolved, db_url=args.db, fresh=args.fresh, n_jobs=args.n_jobs,
                            progress=not args.no_progress, retry_failed=args.retry_failed,
                            mlflow=False if args.no_mlflow else None, extend=args.extend)
    print_summary(result, resume=resume_command(args))
    return result.exit_code


def resume_command(args: argparse.Namespace) -> str:
    """The command that resumes this ``run``: its own arguments, without ``--fresh`` (which would
    start yet another version)."""
    from experiment.reporting import cli_command

    words = ["run", args.dir]
    words += [word for override in args.overrides for word in ("--set", override)]
    words += [word for trial in args.trial for word in ("--trial", trial)]
    words += ["--db", args.db] if args.db else []
    words += ["--n-jobs", str(args.n_jobs)] if args.n_jobs is not None else []
    words += [flag for flag, given in (("--extend", args.extend), ("--retry-failed", args.retry_failed),
                                       ("--no-mlflow", args.no_mlflow),
                                       ("--no-progress", args.no_progress)) if given]
    return f"{cli_command()} {shlex.join(words)}"


def cmd_status(args: argparse.Namespace) -> int:
    from experiment.commands import cmd_status as status

    if args.version is not None and args.experiment is None:
        from settings.errors import ConfigError, ConfigIssue

        raise ConfigError(ConfigIssue("", "needs an EXPERIMENT name", "--version"))
    return status(args.experiment, args.db, args.json, version=args.version)


def cmd_list(args: argparse.Namespace) -> int:
    from experiment.commands import cmd_list as listing

    return listing(args.db, args.json)


def cmd_show(args: argparse.Namespace) -> int:
    from analysis.commands import cmd_show as show

    return show(args.experiment, args.db, args.json, args.top, args.metric, version=args.version)


def cmd_export(args: argparse.Namespace) -> int:
    from analysis.commands import cmd_export as export

    return export(args.experiment, args.csv, args.per_run, args.db, version=args.version)


def cmd_report(args: argparse.Namespace) -> int:
    import analysis
    from experiment.store import find_experiment, open_readonly

    store = open_readonly(args.db)
    try:
        record = find_experiment(store, args.experiment, args.version)
        index = analysis.build_report(record, args.out, db=store)
    finally:
        store.close()
    print(f"report: {index}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from experiment.commands import cmd_eval as evaluate

    return evaluate(args.run_dir, args.checkpoint, args.split, args.json, plots=not args.no_plots,
                    plots_dir=args.plots_dir)


def cmd_export_nir(args: argparse.Namespace) -> int:
    from experiment.export_nir import cmd_export_nir as export_nir

    return export_nir(args.run, args.out, args.checkpoint, args.dt, args.strict, args.db)


def cmd_mlflow_sync(args: argparse.Namespace) -> int:
    from experiment.mlflow_sync import cmd_mlflow_sync as sync

    return sync(args.experiment, args.db, args.version, args.tracking_uri, not args.no_artifacts)


def cmd_db(args: argparse.Namespace) -> int:
    from experiment.commands import cmd_db_upgrade

    return cmd_db_upgrade(args.db)


COMMANDS = {"run": cmd_run, "config": cmd_config, "status": cmd_status, "list": cmd_list, "show": cmd_show,
            "export": cmd_export, "eval": cmd_eval, "db": cmd_db, "report": cmd_report, "export-nir": cmd_export_nir,
            "mlflow-sync": cmd_mlflow_sync}


class ClosedPipeGuard:
    """stdout that survives its reader going away (``python main.py run DIR | head -1``): after
    the first BrokenPipeError every further write goes to os.devnull, and the command goes on."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())  # also what the buffered text is flushed to at exit
        except (AttributeError, OSError, ValueError):  # a stream without a file descriptor
            self._stream = open(os.devnull, "w")
        finally:
            os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["run", DEFAULT_EXPERIMENT]
    if argv[0] == "--config-dir" and len(argv) > 1:  # the original framework's newer layout: run DIR
        argv = ["run", argv[1], *argv[2:]]
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return EXIT_INVALID
    from experiment.outputs import check_db_url
    from experiment.store import DatabaseNotFound, NotADatabase, SchemaOutdated
    from settings.errors import ConfigError

    stdout = sys.stdout
    sys.stdout = stdout if isinstance(stdout, ClosedPipeGuard) else ClosedPipeGuard(stdout)
    try:
        check_db_url(getattr(args, "db", None))
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_INVALID
    except (SchemaOutdated, DatabaseNotFound, NotADatabase) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt as exc:
        reason = f": {exc}" if str(exc) else ""
        if args.command == "run":
            print(f"interrupted{reason}; the current run is INTERRUPTED and resumes from its last checkpoint with:",
                  file=sys.stderr)
            print(f"resume:      {resume_command(args)}", file=sys.stderr)
        else:
            print(f"interrupted{reason}; the current run is INTERRUPTED and resumes from its last checkpoint when you "
                  "run the same command again", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
