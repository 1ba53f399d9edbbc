"""The command line, a thin door into the study runner: `synevo run | check | ui`.

The command line owns the terminal: it configures logging, prints tables and turns a bad study
file or option into one line on stderr (`synevo: error: ...`, exit code 2) instead of a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from synevo.study.config import StudyConfig, load_study, parse_assignment, warn_suspicious

if TYPE_CHECKING:
    from synevo.study.runner import StudyResult

logger = logging.getLogger("synevo.cli")

DEFAULT_UI_URI = "sqlite:///mlflow.db"
"""The store `synevo ui` opens without `--tracking-uri`: the runner's default, in the cwd."""

USAGE_ERROR = 2

SET_HELP = """\
--set KEY=VALUE overrides one key of the study file before it is validated; repeat it for
several keys. KEY is dotted: a top-level key (name, tasks, seeds, budget), a key of a table
(evaluation.agents, execution.workers, model.genes), or a setting of one table of the
[[models]] or [[optimizers]] arrays, picked by its label (its name when it has no label) or
its 0-based index: optimizers.snes.popsize, models.0.hidden. VALUE is read as TOML (2, 2e4,
3e-4, [64, 64], "x", true); a bare word is a string. --tasks, --budget and --seeds are
applied after every --set. Example, a smoke version of a study:
  synevo run studies/bottleneck.toml --set budget=20000 --seeds 1,2 --tasks CartPole-v1
"""


class UsageError(Exception):
    """A bad study file or option, reported as one line on stderr without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `synevo` command; returns the process exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(quiet=getattr(args, "quiet", False))
    try:
        return args.command(args)
    except UsageError as e:
        message = " ".join(str(e).split())
        print(f"synevo: error: {message}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("synevo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


# Commands


def _run(args: argparse.Namespace) -> int:
    """`synevo run`: run every trial of a study, then print the results table."""
    config = _load(args)
    from tqdm.contrib.logging import logging_redirect_tqdm

    from synevo.study.runner import run_study

    with logging_redirect_tqdm():
        result = run_study(
            config,
            tracking_uri=args.tracking_uri,
            ray_address=args.ray_address,
            workers=config.execution.workers,
            progress=not args.no_progress,
            resume=args.resume,
            report_dir=Path(args.report_dir or Path("reports") / config.name),
        )
    print(result.table_markdown.rstrip())
    print()
    if result.report_dir is not None:
        print(f"report (tables, figures, all tests): {result.report_dir / 'report.md'}")
        _hint_whole_experiment(result, config.name)
    reused = f" ({len(result.skipped)} reused from earlier runs)" if result.skipped else ""
    print(f"{len(result.outcomes)} trials finished{reused} in {result.wall_time:.0f} s")
    print(f"MLflow experiment {config.name!r} (id {result.experiment_id}) in {result.tracking_uri}")
    print(f"parent run {result.parent_run_id}; browse it with: {_ui_command(result.tracking_uri)}")
    for name, reason in result.failures.items():
        print(f"synevo: trial {name} failed: {reason}", file=sys.stderr)
    return 1 if result.failures else 0


def _hint_whole_experiment(result: StudyResult, experiment: str) -> None:
    """Point to `synevo report` when earlier runs left trials this run's report leaves out."""
    reported, finished = len(result.outcomes), result.experiment_trials
    if finished > reported:
        print(
            f"this report covers this run's {reported} trials; the experiment has {finished} "
            f"finished trials, all reported by: synevo report {experiment} "
            f"--tracking-uri {result.tracking_uri} --out DIR"
        )


def _check(args: argparse.Namespace) -> int:
    """`synevo check`: validate a study and list its trials without running anything."""
    config = _load(args)
    trials = config.trials()
    sizes = [len(config.tasks), len(config.models), len(config.optimizers), len(config.seeds)]
    print(f"study {config.name!r}: {len(trials)} trials of {config.budget:,} env steps each")
    print(f"  tasks x models x optimizers x seeds = {' x '.join(map(str, sizes))}")
    print(f"  {len(trials) * config.budget:,} training env steps in all")
    for trial in trials:
        print(f"  {trial.name}")
    return 0


def _report(args: argparse.Namespace) -> int:
    """`synevo report`: write a study's report from its MLflow runs alone."""
    from synevo.study.experiment_report import write_report
    from synevo.study.report import table_markdown

    out = Path(args.out or Path("reports") / args.experiment)
    try:
        written = write_report(args.tracking_uri, args.experiment, out_dir=out)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(table_markdown(written.results).rstrip())
    print(f"\nreport of {len(written.records)} trials written to {written.out_dir / 'report.md'}")
    if written.parent_run_id:
        print(f"logged to run {written.parent_run_id} under report/")
    return 0


def _ui(args: argparse.Namespace) -> int:
    """`synevo ui`: serve the MLflow UI on localhost; replaces this process."""
    uri = args.tracking_uri or DEFAULT_UI_URI
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.is_file():
            raise UsageError(
                f"no MLflow store at {db.resolve()}; run a study first, start `synevo ui` in "
                f"the directory that holds mlflow.db, or pass --tracking-uri"
            )
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    logger.info("MLflow UI on http://127.0.0.1:%d for %s", args.port, uri)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 0  # not reached: execv only returns by raising


# Helpers


def _load(args: argparse.Namespace) -> StudyConfig:
    """Load the study file and apply the command-line overrides.

    Raises:
        UsageError: for a missing, malformed or invalid study file or override; errors raised
            later, while running, keep their traceback.
    """
    try:
        overrides = [parse_assignment(text) for text in args.set or []]
        if args.tasks is not None:
            overrides.append(("tasks", args.tasks))
        config = load_study(args.study, overrides).with_overrides(
            budget=args.budget,
            seeds=args.seeds,
            workers=getattr(args, "workers", None),
        )
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    warn_suspicious(config)
    return config


def _ui_command(tracking_uri: str) -> str:
    """The `synevo ui` command that browses `tracking_uri` from the working directory."""
    default = Path("mlflow.db").resolve()
    if tracking_uri in (DEFAULT_UI_URI, f"sqlite:///{default}"):
        return "synevo ui"
    return f"synevo ui --tracking-uri {tracking_uri}"


def _seed_list(text: str) -> list[int]:
    """Parse `--seeds 1,2,3`."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 1,2,3, got {text!r}"
        ) from None


def _task_list(text: str) -> list[str]:
    """Parse `--tasks CartPole-v1,Acrobot-v1`."""
    tasks = [part.strip() for part in text.split(",") if part.strip()]
    if not tasks:
        raise argparse.ArgumentTypeError(f"expected comma-separated gymnasium ids, got {text!r}")
    return tasks


def _configure_logging(quiet: bool) -> None:
    """INFO for synevo (WARNING with --quiet), WARNING for every other library."""
    # evotorch and MLflow configure their own loggers on import; these variables tame them.
    os.environ.setdefault("EVOTORCH_VERBOSE_LEVEL", "-1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # resume, report
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("synevo").setLevel(logging.WARNING if quiet else logging.INFO)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synevo",
        description="Optimize one genome-to-connectome model by gradient descent or evolution.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="log warnings only")

    scale = _scale_options()

    run = commands.add_parser(
        "run",
        parents=[quiet, scale],
        help="run a study and print its results table",
        epilog=SET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(command=_run)
    run.add_argument("study", metavar="STUDY_FILE", help="a study TOML file")
    run.add_argument("--workers", type=int, metavar="N", help="Ray workers; 0 runs in-process")
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        default=os.environ.get("RAY_ADDRESS"),
        help="an existing Ray cluster (default: $RAY_ADDRESS, else a local one)",
    )
    run.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--resume",
        action="store_true",
        help="reuse trials that already finished in this study's experiment with the same settings",
    )

    run.add_argument(
        "--report-dir",
        metavar="DIR",
        help="where the report's files go (default: reports/STUDY_NAME)",
    )

    report = commands.add_parser(
        "report",
        parents=[quiet],
        help="write a study's report (tables, figures, tests) from its MLflow runs",
    )
    report.set_defaults(command=_report)
    report.add_argument("experiment", metavar="EXPERIMENT", help="the study's name in MLflow")
    report.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    report.add_argument(
        "--out", metavar="DIR", help="folder for the files (default: reports/EXPERIMENT)"
    )

    check = commands.add_parser(
        "check",
        parents=[quiet, scale],
        help="validate a study and list its trials",
        epilog=SET_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.set_defaults(command=_check)
    check.add_argument("study", metavar="STUDY_FILE", help="a study TOML file")

    ui = commands.add_parser("ui", help="serve the MLflow UI on 127.0.0.1")
    ui.set_defaults(command=_ui)
    ui.add_argument("--port", type=int, default=5000, metavar="P", help="port (default: 5000)")
    ui.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_UI_URI})",
    )
    return parser


def _scale_options() -> argparse.ArgumentParser:
    """The options that change a study's scale, shared by `run` and `check`."""
    scale = argparse.ArgumentParser(add_help=False)
    scale.add_argument(
        "--budget", type=int, metavar="N", help="training env steps per trial (overrides file)"
    )
    scale.add_argument(
        "--seeds", type=_seed_list, metavar="1,2,3", help="comma-separated seeds (overrides file)"
    )
    scale.add_argument(
        "--tasks",
        type=_task_list,
        metavar="A,B",
        help="comma-separated gymnasium ids (overrides file)",
    )
    scale.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the study file, e.g. evaluation.agents=2 (repeatable; see below)",
    )
    return scale
