"""Spikelab command line: ``python main.py [command] ...`` (``python main.py --help``)."""
from __future__ import annotations

import argparse
import sys
import time
import traceback

EXIT_OK, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130
DEFAULT_EXPERIMENT = "configs/default"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Spikelab: train spiking neural networks described in YAML and record every run. "
                    f"Without a command, runs the bundled quick tour ({DEFAULT_EXPERIMENT}).",
        epilog="Exit codes: 0 all runs completed, 2 invalid input (nothing was run or written), "
               "3 some runs FAILED, 130 interrupted.")
    sub = parser.add_subparsers(dest="command", metavar="command")

    run = sub.add_parser("run", help="train every trial x repeat of an experiment folder",
                         description="Validate the four YAML files of DIR, then train every trial and repeat, "
                                     "writing outputs/<experiment>/<trial>/repeat_<k>/.")
    run.add_argument("dir", help="experiment folder (config.yaml, env.yaml, experiment.yaml, trials.yaml, "
                                 "or a config/ subfolder holding them)")
    _add_set(run)
    run.add_argument("--trial", action="append", default=[], metavar="NAME",
                     help="run only this trial (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    config = sub.add_parser("config", help="print the fully resolved config of every trial",
                            description="Print the fully resolved config (defaults and env values filled in) "
                                        "of every trial and sweep point, as YAML.")
    config.add_argument("dir", help="experiment folder")
    _add_set(config)
    config.add_argument("--trial", action="append", default=[], metavar="NAME", help="only this trial")
    return parser


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                        help="override a setting, e.g. --set optimizer.lr=0.01 --set model.layers[0].kernel.tau_m=10 "
                             "--set env.T=200 (values are YAML scalars; repeatable)")


def _resolve(args: argparse.Namespace):
    import pipeline  # noqa: F401  (registers every component)
    from settings.resolve import resolve_experiment

    return resolve_experiment(args.dir, args.overrides, args.trial or None)


def cmd_config(args: argparse.Namespace) -> int:
    from experiment.plan import config_hash
    from settings.yaml_io import dump_yaml

    experiment = _resolve(args)
    for trial in experiment.trials:
        print(f"# trial {trial.name}  (repeat {trial.repeat}, config hash {config_hash(trial.config)[:12]})")
        if trial.sweep_point:
            print(f"# sweep point: {trial.sweep_point}")
        print(dump_yaml(trial.config))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from experiment.plan import plan_runs
    from experiment.runner import execute_run

    experiment = _resolve(args)
    runs = plan_runs(experiment)
    print(f"experiment {experiment.settings.name}: {len(experiment.trials)} trial(s), {len(runs)} run(s)")
    failed = 0
    for run in runs:
        t0 = time.perf_counter()
        info = {"experiment": experiment.settings.name, "trial": run.trial.name, "repeat": run.repeat,
                "seed": run.seed, "config_hash": run.config_hash}
        try:
            result = execute_run(run.trial.config, run.seed, run.output_dir, info, progress=not args.no_progress)
        except Exception as exc:  # one failing run never stops the others
            failed += 1
            print(f"FAILED {run.label}: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(limit=3, file=sys.stderr)
            continue
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.history[-1].items()
                          if k in ("train_acc", "val_acc", "test_acc"))
        print(f"done {run.label} in {time.perf_counter() - t0:.1f}s: {shown} -> {run.output_dir}")
    return EXIT_FAILED if failed else EXIT_OK


COMMANDS = {"run": cmd_run, "config": cmd_config}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        argv = ["run", DEFAULT_EXPERIMENT]
    args = build_parser().parse_args(argv)
    from settings.errors import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"error: {issue}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
