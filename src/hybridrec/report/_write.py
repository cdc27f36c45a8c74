"""``write_report``: evaluate the models once, build every section, write one HTML file."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec._core.progress import progress_bar
from hybridrec._errors import HybridrecError
from hybridrec.report._data import Evaluation, Subject, check_comparison
from hybridrec.report._html import html_page, write_atomic
from hybridrec.report._plots import Plots
from hybridrec.report._sections import (
    activity_section,
    calibration_section,
    comparison_section,
    dataset_section,
    evaluation_section,
    importance_section,
    item_map_section,
    training_section,
)

log = logging.getLogger(__name__)


def write_report(
    models: Mapping[str, Any],
    out_path: str | Path,
    *,
    ratings: pd.DataFrame | None = None,
    title: str | None = None,
    k: int = 10,
    comparison: pd.DataFrame | None = None,
    show_progress: bool = False,
) -> Path:
    """Write the HTML report on ``models`` (name → fitted model) to ``out_path``; return it.

    The first model is the subject: every model is evaluated on the first model's hold-out
    (``model.evaluate(k=k)`` for the first one and for any model whose own hold-out is the
    same, exactly what ``hybridrec evaluate`` runs; ``model.evaluate(first.eval_set_, k=k)``
    otherwise), next to a global-mean baseline.
    ``ratings`` (``userId``, ``movieId``, ``rating``), the data the models were trained on, feeds
    the dataset summary; without it the summary uses what the first model keeps (counts and the
    hold-out). ``comparison``: a table from :func:`hybridrec.hybrid._compare.compare_models`
    (``hybridrec compare``; columns ``scenario``, ``model``, ``rmse``, ... ) adds a warm /
    cold-start section; the report never trains models itself. The file is written to a
    temporary name in the same folder and renamed into place, so readers never see half a
    report.
    """
    if not models:
        raise HybridrecError("give at least one model for the report")
    if k < 1:
        raise HybridrecError(f"k must be at least 1, got {k}")
    out = Path(out_path)
    if out.exists() and out.is_dir():
        raise HybridrecError(f"{out} is a folder: give a file name such as report.html")
    plots = Plots.create()
    names = list(models)
    subject = Subject.build(names[0], models[names[0]])
    title = title or f"hybridrec report: {names[0]}"
    if comparison is not None:
        check_comparison(comparison)
    n_sections = 8 if comparison is not None else 7
    with progress_bar("report", len(models) + n_sections, show=show_progress) as bar:
        ev = Evaluation.run(models, subject, k, bar)
        sections: list[tuple[str, str, Callable[[], str]]] = [
            ("dataset", "Dataset", lambda: dataset_section(plots, subject, ratings)),
            ("evaluation", "Evaluation", lambda: evaluation_section(plots, ev)),
            ("training", "Training", lambda: training_section(plots, models)),
            ("calibration", "Predicted vs actual", lambda: calibration_section(plots, ev)),
            ("activity", "Error by user activity", lambda: activity_section(plots, ev)),
            ("item-map", "Item factor map", lambda: item_map_section(plots, subject)),
            ("importance", "Feature importance", lambda: importance_section(plots, models)),
        ]
        if comparison is not None:
            table = comparison
            sections.insert(
                2, ("cold-start", "Warm and cold start", lambda: comparison_section(plots, table))
            )
        bodies = []
        for anchor, heading, build in sections:
            bar.advance(0, f"report: {heading.lower()}")
            log.info("report section: %s", heading)
            bodies.append((anchor, heading, build()))
            bar.advance(1)
        bar.advance(0, "report")
    document = html_page(title, names, subject, bodies)
    write_atomic(out, document)
    log.info("report written to %s", out)
    return out
