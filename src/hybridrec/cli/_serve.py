"""``hybridrec serve``: the command-line face of :func:`hybridrec.serve.run_server`."""

from __future__ import annotations

from typing import Any

import click

from hybridrec._errors import HybridrecError
from hybridrec.cli._common import State, examples, guarded


class _FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses nan and inf (nan passes every range comparison)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


@click.command(
    "serve",
    help="Serve a model over HTTP/JSON (OpenAPI spec at /docs and /openapi.json). "
    "SIGTERM or Ctrl-C stops it after the requests in flight."
    + examples(
        "hybridrec serve recommender_16",
        "hybridrec serve recommender_16 --port 9000 --workers 2 --watch 5",
        "export HYBRIDREC_ADMIN_TOKEN=...; "
        "hybridrec serve recommender_16 --admin-token-env HYBRIDREC_ADMIN_TOKEN",
        "curl 'http://127.0.0.1:8000/recommend?user=903&genre=Comedy&n=5'",
    ),
)
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes, each with its own copy of the model.",
)
@click.option(
    "--admin-token-env",
    metavar="VAR",
    help="Enable POST /admin/reload, authorised by the token held in environment variable VAR.",
)
@click.option(
    "--watch",
    type=_FiniteFloatRange(min=0.1),
    metavar="SECONDS",
    help="Reload the model when it is saved again, checking every SECONDS (every worker).",
)
@click.option(
    "--timeout",
    type=_FiniteFloatRange(min=0.01),
    default=10.0,
    show_default=True,
    help="Seconds a request may take before it is answered 503.",
)
@click.option("--max-n", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most pairs in one POST /predict (and ratings in one new-user request).",
)
@click.option("--access-log/--no-access-log", default=True, help="One JSON line per request.")
@click.pass_obj
@guarded
def serve(
    state: State,
    name: str,
    host: str,
    port: int,
    workers: int,
    admin_token_env: str | None,
    watch: float | None,
    timeout: float,
    max_n: int,
    max_pairs: int,
    access_log: bool,
) -> None:
    try:
        from hybridrec import serve as serving
    except ImportError as exc:
        raise HybridrecError(
            f"serving needs the 'serve' extra ({exc.name} is missing): "
            "pip install 'hybridrec[serve]'"
        ) from None
    serving.run_server(
        state.models_root(),
        name,
        host=host,
        port=port,
        workers=workers,
        admin_token_env=admin_token_env,
        watch_interval=watch,
        timeout=timeout,
        max_n=max_n,
        max_pairs=max_pairs,
        access_log=access_log,
        quiet=state.quiet,
        echo=lambda line: click.echo(line, err=True),
    )
