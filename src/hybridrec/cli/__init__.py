"""The ``hybridrec`` command: parse, call the Python API, print. The only place that sets up
logging.

Exit codes: 0 success, 2 bad input (one-line message on stderr), 1 internal error.

One module per group of commands: ``_data`` (load, synth, sql), ``_train`` (train mf / hybrid /
ranker), ``_use`` (recommend, predict, weights, hybrid dataset / notebook), ``_inspect`` (info,
models, evaluate, explain, compare, report), ``_serve`` and ``_demo``; ``_spark`` holds every
``--engine spark`` branch and ``_common`` what they share (state, error handling, output).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from hybridrec.cli import _data, _demo, _inspect, _serve, _train, _use
from hybridrec.cli._common import State, one_line_error

__all__ = ["main"]

EPILOG = """\b
Exit codes:
  0    success
  1    internal error (a bug: rerun with -vv for the traceback)
  2    bad input: one line "error: ..." on stderr naming the file, line, column or id
  130  interrupted (Ctrl-C)

Results go to stdout (--format table|json|csv); progress bars, summaries and logs go to
stderr. Progress is drawn only when stderr is a terminal and never with --quiet, so piped
output stays clean. Run "hybridrec COMMAND --help" for a command's options and examples.
"""


class _OneLineUsageErrors(click.Group):
    """Click's usage errors (a bad option value, a missing option, an unknown command) as the
    one line every other bad input gets: ``error: ...`` and exit code 2, not four lines of
    usage and hints."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "hybridrec"
            sys.exit(one_line_error(f"{exc.format_message()} (see {where} --help)"))
        except click.ClickException as exc:
            sys.exit(one_line_error(exc.format_message()))
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)  # click.exceptions.Exit gives its code


@click.group(
    cls=_OneLineUsageErrors,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.option(
    "--workspace",
    "-w",
    envvar="HYBRIDREC_WORKSPACE",
    default=None,
    help="Workspace directory [default: $HYBRIDREC_WORKSPACE or ./hybridrec-workspace].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries on stderr.")
@click.option("--verbose", "-v", count=True, help="Log to stderr (-vv for debug and tracebacks).")
@click.version_option(package_name="hybridrec")
@click.pass_context
def main(ctx: click.Context, workspace: str | None, quiet: bool, verbose: int) -> None:
    """Hybrid recommendation on rating data: BigQuery ML's matrix factorization workflow,
    locally, with DuckDB and fast ALS.

    \b
    Typical session:
      hybridrec load ml-100k
      hybridrec train mf --name recommender_16 --num-factors 16
      hybridrec recommend recommender_16 --user 903 --genre Comedy -n 5
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = State(workspace, quiet, verbose)


for _command in (
    _data.load,
    _data.synth,
    _data.sql,
    _train.train,
    _use.hybrid,
    _use.recommend,
    _use.predict,
    _use.weights,
    _inspect.info,
    _inspect.models_,
    _inspect.evaluate,
    _inspect.explain,
    _inspect.compare,
    _inspect.report,
    _serve.serve,
    _demo.demo,
):
    main.add_command(_command)
