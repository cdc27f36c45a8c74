"""``hybridrec demo``: the companion BigQuery ML notebook end to end (the steps are in
:mod:`hybridrec._demo`, imported only when the command runs)."""

from __future__ import annotations

import click

from hybridrec.cli._common import State, examples, guarded


@click.command(
    "demo",
    help="Run the companion BigQuery ML notebook end to end on MovieLens 100K."
    + examples("hybridrec demo", "hybridrec --workspace /tmp/demo demo"),
)
@click.pass_obj
@guarded
def demo(state: State) -> None:
    from hybridrec._demo import run_demo

    run_demo(state.workspace(), echo=click.echo, show_progress=state.show_progress)
