"""What every command shares: the state of one invocation, the guard that turns errors into
one line and an exit code, progress spinners, output (--format) and saving models."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from hybridrec._errors import HybridrecError, first_line

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = "\n\n\b\nExample:\n  "


def examples(*lines: str) -> str:
    """The "Example:" block ending a command's help (click keeps its lines as written)."""
    return EXAMPLES + "\n  ".join(lines)


class State:
    """The global options of one invocation (``ctx.obj``): the workspace, --quiet, -v."""

    def __init__(self, workspace: str | None, quiet: bool, verbose: int) -> None:
        self.workspace_path = workspace
        self.quiet = quiet
        self.verbose = verbose

    @property
    def show_progress(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def workspace(self) -> Any:
        from hybridrec.workspace import Workspace

        return Workspace(self.workspace_path)

    def models_root(self) -> Path:
        return Path(self.workspace().models_dir)

    def load_model(self, name: str) -> Any:
        from hybridrec.models import load_model

        model = load_model(self.models_root(), name)
        if hasattr(model, "show_progress"):
            model.show_progress = self.show_progress
        return model


def guarded(func: F) -> F:
    """Turn user errors into a one-line message and exit code 2; bugs into exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HybridrecError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except (ValueError, KeyError) as exc:
            # Parameter validation in the library raises ValueError; report it like bad input.
            message = first_line(exc)
            click.echo(f"error: {message}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (rerun with -vv for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def working(state: State, message: str) -> Iterator[None]:
    """A spinner with elapsed time on stderr for a step with no measurable progress (one SQL
    query, reading a table); nothing unless progress is shown (a terminal, no --quiet)."""
    if not state.show_progress:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as spinner:
        spinner.add_task(message, total=None)
        yield


def emit(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    from hybridrec._core.output import render

    click.echo(render(frame, fmt, title=title))


def emit_mapping(values: dict[str, Any], fmt: str, title: str | None = None) -> None:
    from hybridrec._core.output import render_mapping

    click.echo(render_mapping(values, fmt, title=title))


def local_only_engine(what: str) -> Callable[[F], F]:
    """A hidden ``--engine`` on commands that run on the local engine only: ``--engine spark``
    gets a one-line explanation instead of "no such option" (docs/spark.md)."""
    return click.option(
        "--engine",
        type=click.Choice(["local", "spark"]),
        default="local",
        hidden=True,
        expose_value=True,
        callback=lambda _ctx, _param, value: _refuse_spark(value, what),
    )


def _refuse_spark(engine: str, what: str) -> str:
    if engine == "spark":
        raise click.exceptions.Exit(one_line_error(f"{what} (see docs/spark.md)"))
    return engine


def one_line_error(message: str) -> int:
    click.echo(f"error: {message}", err=True)
    return 2


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def ratings_file(path: str) -> pd.DataFrame:
    """A ratings file (train mf --ratings, evaluate --data), checked as ``load`` checks
    ratings; errors name the file and line (CSV) or row (Parquet)."""
    from hybridrec.data import read_ratings

    return read_ratings(path)


def save_model(state: State, model: Any, name: str, path: Path, *, note: str = "") -> None:
    """``model.save(path)`` (atomic), then say where it went and whether it replaced a model."""
    replaced = path.is_dir()
    model.save(path)
    if not state.quiet:
        again = " (replacing the model of that name)" if replaced else ""
        click.echo(f"saved model {name!r} to {path}{note}{again}", err=True)


def explicit_mf(state: State, mf_name: str, name: str) -> Any:
    """The explicit matrix factorization ``--mf`` names, for a model to be saved as ``name``."""
    from hybridrec._core.contract import MATRIX_FACTORIZATION, describe, is_kind

    if mf_name == name:
        raise HybridrecError(
            f"--name {name!r} is also --mf: saving would replace the model it is built from; "
            "choose another name"
        )
    mf = state.load_model(mf_name)
    if not is_kind(mf, MATRIX_FACTORIZATION):
        raise HybridrecError(
            f"--mf {mf_name!r} is {describe(mf)} model: give an explicit matrix factorization "
            "(hybridrec train mf)"
        )
    return mf


def output_path(state: State, out: str, suffixes: tuple[str, ...], *inputs: str | None) -> Path:
    """``out`` checked before any work: the right file type, a folder that exists, and
    neither the workspace's own files nor one of the command's ``inputs``."""
    from hybridrec._core.files import check_output

    ws = state.workspace()
    protected = (ws.db_path, ws.db_path.with_name(ws.db_path.name + ".wal"), ws.models_dir)
    return check_output(out, suffixes=suffixes, protected=protected, inputs=inputs)


def is_data_file(data: str) -> bool:
    """--data is a file, folder or URI (else the name of a workspace table)."""
    return Path(data).exists() or "." in data or "/" in data


def explicit_mf_meta(ws: Any, mf_name: str) -> dict[str, Any]:
    """``meta.json`` of the model ``--mf`` names, checked to be an explicit matrix
    factorization (the hybrid dataset reads its weights by SQL)."""
    from hybridrec import artifacts
    from hybridrec.models import model_dir

    meta = artifacts.read_meta(model_dir(ws.models_dir, mf_name))
    if meta.get("kind") != "matrix_factorization":
        raise HybridrecError(f"--mf {mf_name!r} is not a matrix factorization model")
    return meta
