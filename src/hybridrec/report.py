"""A self-contained HTML report on trained models: plots and tables in one file.

The report holds the training curves (``ML.TRAINING_INFO``), the evaluation of every model on
the first model's hold-out (the numbers of ``hybridrec evaluate``, computed by the same
``model.evaluate()``), calibration, error by user activity, a 2-D map of the item factors,
feature importance of hybrid models and a summary of the data. Images are PNGs embedded as
``data:`` URIs and the CSS is inline, so the file opens anywhere without a network.

This is the only module that imports matplotlib, lazily and through its Agg canvas (no pyplot,
no global state, no display needed).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.files import atomic_file
from hybridrec._core.output import cell
from hybridrec._core.progress import Progress, progress_bar
from hybridrec._errors import HybridrecError
from hybridrec.evaluate import regression_metrics

__all__ = ["ACTIVITY_BINS", "write_report"]

log = logging.getLogger(__name__)

BASELINE = "global mean"
# Bins of a user's number of training ratings: (low, high) inclusive, high None = no limit.
ACTIVITY_BINS: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 5),
    (6, 10),
    (11, 20),
    (21, 50),
    (51, 100),
    (101, 200),
    (201, 500),
    (501, None),
)
_MAX_MAP_ITEMS = 3000  # the most-rated items drawn on the factor map
_N_LABELS = 10  # popular titles labelled on the factor map
_MIN_MAP_RATINGS = 10  # items with fewer training ratings are left off the map
_MIN_BIN_RATINGS = 30  # activity bins with fewer hold-out ratings are not charted
_N_GENRES = 8  # genres with their own colour on the factor map
_N_FEATURES = 15  # bars in a feature-importance chart
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


# ---------------------------------------------------------------------- public API
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
    plots = _Plots.create()
    names = list(models)
    subject = _Subject.build(names[0], models[names[0]])
    title = title or f"hybridrec report: {names[0]}"
    if comparison is not None:
        _check_comparison(comparison)
    n_sections = 8 if comparison is not None else 7
    with progress_bar("report", len(models) + n_sections, show=show_progress) as bar:
        ev = _Evaluation.run(models, subject, k, bar)
        sections: list[tuple[str, str, Callable[[], str]]] = [
            ("dataset", "Dataset", lambda: _dataset_section(plots, subject, ratings)),
            ("evaluation", "Evaluation", lambda: _evaluation_section(plots, ev)),
            ("training", "Training", lambda: _training_section(plots, models)),
            ("calibration", "Predicted vs actual", lambda: _calibration_section(plots, ev)),
            ("activity", "Error by user activity", lambda: _activity_section(plots, ev)),
            ("item-map", "Item factor map", lambda: _item_map_section(plots, subject)),
            ("importance", "Feature importance", lambda: _importance_section(plots, models)),
        ]
        if comparison is not None:
            table = comparison
            sections.insert(
                2, ("cold-start", "Warm and cold start", lambda: _comparison_section(plots, table))
            )
        bodies = []
        for anchor, heading, build in sections:
            bar.advance(0, f"report: {heading.lower()}")
            log.info("report section: %s", heading)
            bodies.append((anchor, heading, build()))
            bar.advance(1)
        bar.advance(0, "report")
    document = _page(title, names, subject, bodies)
    _write_atomic(out, document)
    log.info("report written to %s", out)
    return out


# ---------------------------------------------------------------------- the models' data
def _mf_of(model: Any) -> Any:
    """The matrix factorization inside ``model`` (itself for an MF, ``mf_`` for a hybrid)."""
    return model.mf_ if _is_hybrid(model) else model


def _is_hybrid(model: Any) -> bool:
    return hasattr(model, "regressor_") and hasattr(model, "feature_importance")


def _kind_label(model: Any) -> str:
    if _is_hybrid(model):
        style = "" if getattr(model, "leak_free", True) else ", notebook-style"
        return f"hybrid {model.kind}{style}"
    if hasattr(model, "num_factors"):
        return f"matrix factorization, {model.num_factors} factors"
    return type(model).__name__


@dataclass
class _Subject:
    """The first model: its hold-out, and what its MF knows about users and items."""

    name: str
    model: Any
    mf: Any
    eval_set: pd.DataFrame
    user_train_counts: np.ndarray  # training ratings per user index
    item_train_counts: np.ndarray  # training ratings per item index

    @classmethod
    def build(cls, name: str, model: Any) -> _Subject:
        mf = _mf_of(model)
        eval_set = model.eval_set_
        if eval_set is None or len(eval_set) == 0:
            raise HybridrecError(
                f"model {name!r} has no hold-out (trained with eval_fraction 0): "
                "the report evaluates on the first model's hold-out"
            )
        csr = mf._train_csr
        return cls(
            name=name,
            model=model,
            mf=mf,
            eval_set=eval_set,
            user_train_counts=np.diff(csr.indptr).astype(np.int64),
            item_train_counts=np.bincount(csr.indices, minlength=len(mf.item_vocab_)),
        )

    @property
    def n_train(self) -> int:
        return int(self.user_train_counts.sum())

    def activity(self) -> np.ndarray:
        """Training ratings of the user of each hold-out rating (0 for users the MF lacks)."""
        u = self.mf.user_vocab_.index_of(self.eval_set[USER_COL].to_numpy())
        counts = np.zeros(u.size, dtype=np.int64)
        counts[u >= 0] = self.user_train_counts[u[u >= 0]]
        return counts


@dataclass
class _Evaluation:
    """Every model's metrics and predictions on the subject's hold-out."""

    subject: _Subject
    k: int
    actual: np.ndarray
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def run(
        cls, models: Mapping[str, Any], subject: _Subject, k: int, bar: Progress
    ) -> _Evaluation:
        held = subject.eval_set
        users, items = held[USER_COL].to_numpy(), held[ITEM_COL].to_numpy()
        actual = held[RATING_COL].to_numpy(np.float64)
        result = cls(subject, k, actual)
        mean = float(subject.mf.global_mean_)
        result.metrics[BASELINE] = regression_metrics(actual, np.full(actual.size, mean))
        result.kinds[BASELINE] = f"μ = {mean:.4f}, the training mean"
        result.notes[BASELINE] = "a constant ranks nothing: no ranking metrics"
        for name, model in models.items():
            bar.advance(0, f"report: evaluating {name}")
            same = name == subject.name or _same_frame(model.eval_set_, held)
            # The very call `hybridrec evaluate NAME` makes (the model's own hold-out), whenever
            # that hold-out is this one.
            result.metrics[name] = model.evaluate(None if same else held, k=k)
            result.predictions[name] = np.asarray(model.predict(users, items), dtype=np.float64)
            result.kinds[name] = _kind_label(model)
            if name == subject.name:
                result.notes[name] = "its own hold-out"
            elif same:
                result.notes[name] = f"the same hold-out as {subject.name}"
            else:
                leaked = _share_in_training(_mf_of(model), held)
                result.notes[name] = (
                    f"trained on a different split: {leaked:.1%} of these hold-out ratings were "
                    "in its training data"
                    + (", so its numbers are optimistic" if leaked > 0 else "")
                )
            bar.advance(1)
        return result

    @property
    def names(self) -> list[str]:
        return list(self.predictions)

    def metric_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for values in self.metrics.values():
            seen.update(dict.fromkeys(values))
        return list(seen)


def _same_frame(a: pd.DataFrame | None, b: pd.DataFrame) -> bool:
    if a is None or len(a) != len(b):
        return False
    try:
        return all(
            np.array_equal(a[c].to_numpy(), b[c].to_numpy()) for c in (USER_COL, ITEM_COL)
        ) and np.allclose(a[RATING_COL].to_numpy(np.float64), b[RATING_COL].to_numpy(np.float64))
    except (KeyError, TypeError, ValueError):
        return False


def _share_in_training(mf: Any, held: pd.DataFrame) -> float:
    """Share of ``held`` (user, item) pairs that are among ``mf``'s training ratings."""
    u = mf.user_vocab_.index_of(held[USER_COL].to_numpy()).astype(np.int64)
    i = mf.item_vocab_.index_of(held[ITEM_COL].to_numpy()).astype(np.int64)
    known = (u >= 0) & (i >= 0)
    csr = mf._train_csr
    n_items = max(len(mf.item_vocab_), 1)
    rows = np.repeat(np.arange(len(csr.indptr) - 1, dtype=np.int64), np.diff(csr.indptr))
    train_keys = rows * n_items + csr.indices.astype(np.int64)
    inside = np.isin(u[known] * n_items + i[known], train_keys)
    return float(inside.sum() / max(len(held), 1))


# ---------------------------------------------------------------------- plotting
class _Plots:
    """Figures drawn on matplotlib's Agg canvas and returned as ``<figure>`` HTML."""

    def __init__(self, figure_cls: Any, canvas_cls: Any) -> None:
        self._figure_cls = figure_cls
        self._canvas_cls = canvas_cls

    @classmethod
    def create(cls) -> _Plots:
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise HybridrecError(
                "the report needs matplotlib: pip install 'hybridrec[report]'"
            ) from None
        return cls(Figure, FigureCanvasAgg)

    def figure(self, width: float = 10.0, height: float = 4.2, ncols: int = 1) -> tuple[Any, Any]:
        fig = self._figure_cls(figsize=(width, height), dpi=100, layout="constrained")
        self._canvas_cls(fig)
        axes = fig.subplots(1, ncols, squeeze=False)[0]
        for ax in axes:
            ax.grid(True, color="#e5e5e5", linewidth=0.8)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        return fig, axes

    def embed(self, fig: Any, alt: str, caption: str) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        return (
            f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )


# ---------------------------------------------------------------------- sections
def _dataset_section(plots: _Plots, subject: _Subject, ratings: pd.DataFrame | None) -> str:
    mf = subject.mf
    notes = []
    if ratings is not None and len(ratings):
        users = ratings[USER_COL].to_numpy()
        items = ratings[ITEM_COL].to_numpy()
        values = pd.to_numeric(ratings[RATING_COL]).to_numpy(np.float64)
        per_user = pd.Series(users).value_counts().to_numpy()
        per_item = pd.Series(items).value_counts().to_numpy()
        source = "the ratings the report was given"
        fingerprint = getattr(mf, "data_fingerprint_", None)
        if fingerprint is not None and _fingerprint_of(ratings) != fingerprint:
            notes.append(
                f"These ratings are not the ones {subject.name} was trained on (the data "
                "changed since): the summary describes the ratings, the evaluation the model."
            )
    else:
        per_user = subject.user_train_counts[subject.user_train_counts > 0]
        per_item = subject.item_train_counts[subject.item_train_counts > 0]
        values = subject.eval_set[RATING_COL].to_numpy(np.float64)
        source = f"{subject.name}'s training counts; rating histogram of its hold-out only"
    n_users, n_items = len(per_user), len(per_item)
    n_ratings = int(per_user.sum())
    density = n_ratings / (n_users * n_items) if n_users and n_items else float("nan")
    summary = {
        "users": f"{n_users:,}",
        "items": f"{n_items:,}",
        "ratings": f"{n_ratings:,}",
        "sparsity": f"{1 - density:.2%} of user × item cells empty (density {density:.3%})",
        "rating scale": f"{values.min():g} – {values.max():g}, mean {values.mean():.3f}, "
        f"sd {values.std():.3f}",
        "ratings per user": _spread(per_user),
        "ratings per item": _spread(per_item),
        f"{subject.name}: training / hold-out": f"{subject.n_train:,} / "
        f"{len(subject.eval_set):,} ratings",
        "source": source,
    }
    fig, (ax_hist, ax_tail) = plots.figure(10, 3.8, ncols=2)
    levels, counts = np.unique(values, return_counts=True)
    if levels.size <= 20:
        width = 0.8 * float(np.min(np.diff(levels))) if levels.size > 1 else 0.8
        ax_hist.bar(levels, counts, width=width, color=_PALETTE[0])
        ax_hist.set_xticks(levels)
    else:
        ax_hist.hist(values, bins=40, color=_PALETTE[0])
    ax_hist.set_title("Rating histogram")
    ax_hist.set_xlabel("rating")
    ax_hist.set_ylabel("ratings")
    top = max(int(per_user.max()), int(per_item.max()), 2)
    bins = np.unique(np.geomspace(1, top + 1, 30).astype(int))
    ax_tail.hist(per_user, bins=bins, alpha=0.7, label="users", color=_PALETTE[0])
    ax_tail.hist(per_item, bins=bins, alpha=0.6, label="items", color=_PALETTE[1])
    ax_tail.set_xscale("log")
    ax_tail.set_title("Ratings per user and per item")
    ax_tail.set_xlabel("ratings (log scale)")
    ax_tail.set_ylabel("users / items")
    ax_tail.legend(frameon=False)
    figure = plots.embed(
        fig,
        "Rating histogram and ratings per user and item",
        "Left: how often each rating is given. Right: the long tail of activity and popularity.",
    )
    return _kv_table(summary, css="summary") + "".join(_note(n) for n in notes) + figure


def _spread(counts: np.ndarray) -> str:
    return f"min {int(counts.min()):,}, median {np.median(counts):g}, max {int(counts.max()):,}"


def _fingerprint_of(ratings: pd.DataFrame) -> str | None:
    from hybridrec.data import fingerprint as _fingerprint
    from hybridrec.data import ratings_arrays as _ratings_arrays

    try:
        return str(_fingerprint(*_ratings_arrays(ratings)))
    except HybridrecError:
        return None


def _evaluation_section(plots: _Plots, ev: _Evaluation) -> str:
    names = [BASELINE, *ev.names]
    header = "".join(f"<th>{_esc(n)}</th>" for n in names)
    kinds = "".join(f"<td>{_esc(ev.kinds[n])}</td>" for n in names)
    evaluated = "".join(f"<td>{_esc(ev.notes[n])}</td>" for n in names)
    rows = [
        f'<tr class="kind"><th scope="row">model</th>{kinds}</tr>',
        f'<tr class="kind"><th scope="row">evaluated on</th>{evaluated}</tr>',
    ]
    for metric in ev.metric_names():
        cells = "".join(
            f'<td class="num" data-model="{_esc(n)}" data-metric="{_esc(metric)}">'
            f"{_esc(cell(ev.metrics[n].get(metric, math.nan))) or '—'}</td>"
            for n in names
        )
        rows.append(f'<tr><th scope="row">{_esc(metric)}</th>{cells}</tr>')
    table = (
        f'<table class="metrics" id="metrics-table"><thead><tr><th>metric</th>{header}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    k = ev.k
    fig, (ax_rmse, ax_ndcg) = plots.figure(10, max(2.6, 0.55 * len(names) + 1.4), ncols=2)
    ndcg_key = f"ndcg@{k}"
    for ax, key, label in (
        (ax_rmse, "rmse", "RMSE (lower is better)"),
        (ax_ndcg, ndcg_key, f"NDCG@{k} (higher is better)"),
    ):
        values = [ev.metrics[n].get(key, math.nan) for n in names]
        y = np.arange(len(names))[::-1]
        colours = ["#bbbbbb"] + [_PALETTE[i % len(_PALETTE)] for i in range(len(names) - 1)]
        ax.barh(y, np.nan_to_num(values), color=colours)
        ax.set_yticks(y, names)
        ax.set_title(label)
        finite = [v for v in values if np.isfinite(v)]
        if key == "rmse" and finite:
            low = min(finite)
            ax.set_xlim(max(0.0, low - 0.15 * (max(finite) - low + 0.05) - 0.05), None)
        for yy, v in zip(y, values, strict=True):
            text = f"{v:.4f}" if np.isfinite(v) else "n/a"
            ax.annotate(
                text, (np.nan_to_num(v), yy), xytext=(3, 0), textcoords="offset points",
                va="center", fontsize=9,
            )  # fmt: skip
        ax.margins(x=0.18)
    figure = plots.embed(
        fig,
        f"RMSE and NDCG@{k} by model",
        f"RMSE and NDCG@{k} on the hold-out of {_esc(ev.subject.name)} "
        f"({len(ev.actual):,} ratings). Relevant = held-out rating ≥ 4; items rated in training "
        "are not ranked.",
    )
    intro = (
        f"<p>Every model on the hold-out of <b>{_esc(ev.subject.name)}</b> "
        f"({len(ev.actual):,} ratings), with BigQuery ML's metric names "
        "(<code>ML.EVALUATE</code>). The numbers are those of "
        f"<code>hybridrec evaluate NAME -k {k}</code>: the report calls the same "
        "<code>model.evaluate()</code>.</p>"
    )
    return intro + table + figure


def _check_comparison(frame: pd.DataFrame) -> None:
    missing = [c for c in ("scenario", "model", "rmse") if c not in frame.columns]
    if missing or frame.empty:
        raise HybridrecError(
            "the comparison table needs rows and the columns scenario, model, rmse (the output "
            f"of hybridrec compare --format csv); missing: {', '.join(missing) or 'rows'}"
        )


def _comparison_section(plots: _Plots, frame: pd.DataFrame) -> str:
    scenarios = list(dict.fromkeys(frame["scenario"].astype(str)))
    model_names = list(dict.fromkeys(frame["model"].astype(str)))
    ndcg = next((c for c in frame.columns if str(c).startswith("ndcg@")), None)
    metrics = [("rmse", "RMSE (lower is better)")]
    if ndcg is not None:
        metrics.append((ndcg, f"NDCG@{ndcg.split('@', 1)[1]} (higher is better)"))
    fig, axes = plots.figure(10, 4.2, ncols=len(metrics))
    width = 0.8 / max(len(model_names), 1)
    x = np.arange(len(scenarios))
    for ax, (column, label) in zip(axes, metrics, strict=True):
        values = pd.to_numeric(frame[column], errors="coerce")
        for index, name in enumerate(model_names):
            heights = [
                float(values[(frame["scenario"] == sc) & (frame["model"] == name)].mean())
                for sc in scenarios
            ]
            colour = "#bbbbbb" if name == BASELINE else _PALETTE[index % len(_PALETTE)]
            ax.bar(
                x + (index - (len(model_names) - 1) / 2) * width, np.nan_to_num(heights),
                width=width, color=colour, label=name,
            )  # fmt: skip
        ax.set_xticks(x, scenarios)
        ax.set_title(label)
        finite = values[np.isfinite(values)]
        if column == "rmse" and len(finite):
            ax.set_ylim(max(0.0, float(finite.min()) - 0.1), float(finite.max()) + 0.03)
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="outside lower center", frameon=False,
        fontsize=9, ncols=min(len(model_names), 6),
    )  # fmt: skip
    caption = (
        "Every model trained afresh on each scenario's training part and scored on its test "
        "part (<code>hybridrec compare</code>): warm = a random 20 % of the ratings; cold-user "
        "/ cold-item = every rating of a random 10 % of users / items, never seen in training. "
        "No ranking for cold items: they are outside every model's catalogue."
    )
    figure = plots.embed(fig, "RMSE and NDCG by scenario and model", caption)
    return figure + _frame_table(frame.reset_index(drop=True))


def _training_section(plots: _Plots, models: Mapping[str, Any]) -> str:
    logs: list[tuple[str, pd.DataFrame]] = []
    shared: list[str] = []
    for name, model in models.items():
        info = model.training_info()
        label = f"{name} (its MF)" if _is_hybrid(model) else name
        same = next((other for other, seen in logs if _same_curves(seen, info)), None)
        if same is not None:
            shared.append(f"{_esc(name)}'s MF has the same training log as {_esc(same)}.")
            continue
        logs.append((label, info))
    fig, axes = plots.figure(10, 3.8, ncols=1)
    ax = axes[0]
    for index, (label, info) in enumerate(logs):
        colour = _PALETTE[index % len(_PALETTE)]
        ax.plot(info["iteration"], info["loss"], "o-", color=colour, label=f"{label}: loss")
        if info["eval_loss"].notna().any():
            ax.plot(
                info["iteration"], info["eval_loss"], "s--", color=colour,
                label=f"{label}: eval_loss",
            )  # fmt: skip
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean squared error")
    ax.set_title("ALS training curves (ML.TRAINING_INFO)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=9)
    figure = plots.embed(
        fig,
        "Training curves: loss and eval_loss per iteration",
        "loss: mean squared error on the training ratings; eval_loss: on the hold-out. "
        "A widening gap is over-fitting; early stop ends training when the loss improves by "
        "less than min_rel_progress.",
    )
    first_label, first_log = logs[0]
    table = _frame_table(first_log, caption=f"ML.TRAINING_INFO: {first_label}")
    return figure + "".join(_note(s) for s in shared) + table


def _same_curves(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same iterations, loss and eval_loss (durations differ between runs of the same fit)."""
    columns = ["iteration", "loss", "eval_loss"]
    if len(a) != len(b) or len(a) == 0:
        return False
    return bool(
        np.allclose(
            a[columns].to_numpy(np.float64), b[columns].to_numpy(np.float64), equal_nan=True
        )
    )


def _calibration_section(plots: _Plots, ev: _Evaluation) -> str:
    actual = ev.actual
    fig, (ax_cal, ax_box) = plots.figure(10, 4.4, ncols=2)
    low = float(min(actual.min(), *(p.min() for p in ev.predictions.values())))
    high = float(max(actual.max(), *(p.max() for p in ev.predictions.values())))
    edges = np.linspace(low, high, 17)
    ax_cal.plot([low, high], [low, high], color="#999999", linewidth=1, label="perfect")
    for index, name in enumerate(ev.names):
        pred = ev.predictions[name]
        which = np.clip(np.digitize(pred, edges[1:-1]), 0, len(edges) - 2)
        counts = np.bincount(which, minlength=len(edges) - 1)
        keep = counts >= 5
        mean_pred = np.bincount(which, pred, len(edges) - 1)[keep] / counts[keep]
        mean_true = np.bincount(which, actual, len(edges) - 1)[keep] / counts[keep]
        ax_cal.plot(
            mean_pred, mean_true, "o-", color=_PALETTE[index % len(_PALETTE)], label=name,
            markersize=4,
        )  # fmt: skip
    ax_cal.set_xlabel("predicted rating (bin mean)")
    ax_cal.set_ylabel("actual rating (bin mean)")
    ax_cal.set_title("Calibration")
    ax_cal.legend(frameon=False, fontsize=9)
    first = ev.names[0]
    levels = np.unique(actual)
    if levels.size <= 12:
        groups = [ev.predictions[first][actual == level] for level in levels]
        ax_box.boxplot(
            groups, positions=np.arange(levels.size), widths=0.6, showfliers=False,
            patch_artist=True, boxprops={"facecolor": "#cfe2f3"},
            medianprops={"color": _PALETTE[3]},
        )  # fmt: skip
        ax_box.plot(np.arange(levels.size), levels, "x", color="#555555", label="actual")
        ax_box.set_xticks(np.arange(levels.size), [f"{v:g}" for v in levels])
        ax_box.legend(frameon=False, fontsize=9)
    else:
        ax_box.hexbin(actual, ev.predictions[first], gridsize=40, mincnt=1, cmap="Blues")
    ax_box.set_xlabel("actual rating")
    ax_box.set_ylabel("predicted rating")
    ax_box.set_title(f"Predictions of {first} by actual rating")
    caption = (
        "Left: hold-out ratings grouped by predicted value (16 bins, bins with fewer than 5 "
        "ratings omitted); points on the diagonal are well calibrated. Right: spread of the "
        f"predictions of {_esc(first)} for each actual rating (boxes: quartiles; whiskers: "
        "1.5 IQR). Regression to the mean shows as flat boxes."
    )
    return plots.embed(fig, "Predicted vs actual rating", caption)


def _activity_bins(activity: np.ndarray) -> tuple[list[str], np.ndarray]:
    labels, which = [], np.full(activity.size, -1)
    for index, (lo, hi) in enumerate(ACTIVITY_BINS):
        inside = (activity >= lo) & (activity <= (hi if hi is not None else np.inf))
        which[inside] = index
        labels.append("0 (unknown)" if hi == 0 else f"{lo}+" if hi is None else f"{lo}–{hi}")
    return labels, which


def _activity_section(plots: _Plots, ev: _Evaluation) -> str:
    labels, which = _activity_bins(ev.subject.activity())
    used = [b for b in range(len(labels)) if (which == b).any()]
    counts = {b: int((which == b).sum()) for b in used}
    # An RMSE over a handful of ratings is noise: such bins stay in the table, not the chart.
    charted = [b for b in used if counts[b] >= _MIN_BIN_RATINGS] or used
    rmse = {
        name: {
            b: float(
                np.sqrt(np.mean((ev.predictions[name][which == b] - ev.actual[which == b]) ** 2))
            )
            for b in used
        }
        for name in ev.names
    }
    baseline_pred = np.full(ev.actual.size, ev.subject.mf.global_mean_)
    rmse[BASELINE] = {
        b: float(np.sqrt(np.mean((baseline_pred[which == b] - ev.actual[which == b]) ** 2)))
        for b in used
    }
    names = [*ev.names, BASELINE]
    fig, axes = plots.figure(10, 4.0, ncols=1)
    ax = axes[0]
    width = 0.8 / len(names)
    x = np.arange(len(charted))
    for index, name in enumerate(names):
        colour = "#bbbbbb" if name == BASELINE else _PALETTE[index % len(_PALETTE)]
        ax.bar(
            x + (index - (len(names) - 1) / 2) * width, [rmse[name][b] for b in charted],
            width=width, label=name, color=colour,
        )  # fmt: skip
    ax.set_xticks(x, [f"{labels[b]}\n(n={counts[b]:,})" for b in charted], fontsize=9)
    ax.set_xlabel("user's training ratings (n = hold-out ratings in the bin)")
    ax.set_ylabel("RMSE")
    ax.set_title("Error by user activity")
    finite = [rmse[name][b] for name in names for b in charted if np.isfinite(rmse[name][b])]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.15), max(finite) + 0.05)
    ax.legend(frameon=False, fontsize=9, ncols=min(4, len(names)))
    frame = pd.DataFrame(
        {
            "training ratings": [labels[b] for b in used],
            "hold-out ratings": [counts[b] for b in used],
            **{f"RMSE {name}": [rmse[name][b] for b in used] for name in names},
        }
    )
    caption = (
        f"Hold-out ratings of {_esc(ev.subject.name)} grouped by how many training ratings "
        "their user has. Users with few ratings are where side features (hybrid models) "
        "should help most."
        + (
            f" Bins with fewer than {_MIN_BIN_RATINGS} hold-out ratings are in the table only."
            if len(charted) < len(used)
            else ""
        )
    )
    return plots.embed(
        fig, "RMSE by the user's number of training ratings", caption
    ) + _frame_table(frame)


def _genres_of(value: Any) -> list[str]:
    """An item's genres, whether stored as a list/array or as a ``'|'``-separated string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    parts = value.split("|") if isinstance(value, str) else [str(g) for g in list(value)]
    return [g for g in parts if g and g != "(no genres listed)"]


def _item_map_section(plots: _Plots, subject: _Subject) -> str:
    mf = subject.mf
    factors = np.asarray(mf.item_factors_, dtype=np.float64)
    popularity = subject.item_train_counts
    meta = mf.items_meta_
    ids = mf.item_vocab_.ids
    if factors.shape[0] < 3 or factors.shape[1] < 2:
        return _note("The model has fewer than 3 items or 2 factors: no map to draw.")
    # Rarely rated items keep factors shrunk to ~0 by the regularisation: they would pile up at
    # the centre and say nothing, so the map shows items with enough ratings (at least 50 items).
    order = np.argsort(-popularity, kind="stable")[:_MAX_MAP_ITEMS]
    enough = order[popularity[order] >= _MIN_MAP_RATINGS]
    order = enough if enough.size >= 50 else order[:50]
    centred = factors[order] - factors[order].mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    explained = singular**2 / max(float((singular**2).sum()), 1e-12)
    genre_lists = (
        [_genres_of(g) for g in meta["genres"].to_numpy()[order]]
        if "genres" in meta.columns
        else [[] for _ in order]
    )
    first = np.array([g[0] if g else "(none)" for g in genre_lists], dtype=object)
    titles = (
        meta["title"].astype(str).to_numpy()[order]
        if "title" in meta.columns
        else ids[order].astype(str)
    )
    top_genres = [g for g in pd.Series(first).value_counts().index if g != "(none)"][:_N_GENRES]
    fig, axes = plots.figure(10, 6.6, ncols=1)
    ax = axes[0]
    sizes = 6 + 40 * np.sqrt(popularity[order] / max(int(popularity.max()), 1))
    other = ~np.isin(first, top_genres)
    if other.any():
        ax.scatter(
            coords[other, 0], coords[other, 1], s=sizes[other], c="#cccccc", label="other",
            alpha=0.6, linewidths=0,
        )  # fmt: skip
    for index, genre in enumerate(top_genres):
        mask = first == genre
        ax.scatter(
            coords[mask, 0], coords[mask, 1], s=sizes[mask], c=_PALETTE[index % len(_PALETTE)],
            label=str(genre), alpha=0.55, linewidths=0,
        )  # fmt: skip
    # Where each genre sits on average, counting every genre of an item (not just its first).
    for index, genre in enumerate(top_genres):
        members = np.array([genre in g for g in genre_lists])
        centre = coords[members].mean(axis=0)
        colour = _PALETTE[index % len(_PALETTE)]
        ax.plot(*centre, "D", color=colour, mec="#222222", markersize=10)
    if top_genres:
        ax.plot([], [], "D", color="white", mec="#222222", markersize=8, label="genre mean")
    _label_points(ax, coords[: min(_N_LABELS, len(order))], titles[:_N_LABELS])
    ax.set_xlabel(f"PC 1 ({explained[0]:.1%} of the factor variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.1%})")
    ax.set_title(f"Item factors of {subject.name}: first two principal components")
    ax.legend(frameon=False, fontsize=9, loc="center left", bbox_to_anchor=(1.0, 0.5))
    least = int(popularity[order].min())
    caption = (
        f"Each dot is one of the {len(order):,} items with at least {least} training ratings, "
        "placed by the first two principal components of its factor vector q<sub>i</sub>, "
        "coloured by its first listed genre and sized by its number of training ratings. "
        "Diamonds: the mean position of each genre (counting all genres of an item). The "
        f"{min(_N_LABELS, len(order))} most-rated titles are labelled. Items the model sees "
        "as similar sit close together."
    )
    return plots.embed(fig, "2-D PCA map of the item factors coloured by genre", caption)


def _label_points(ax: Any, points: np.ndarray, labels: Sequence[str]) -> None:
    """Label points, nudging a label up or down until it clears the labels already placed."""
    ax.figure.canvas.draw()  # fixes the axis limits, so data → pixel positions are final
    px_per_pt = ax.figure.dpi / 72.0
    placed: list[tuple[float, float, float]] = []  # left, bottom, right of each label (pixels)
    to_pixels = ax.transData.transform
    for point, label in zip(points, labels, strict=False):
        x, y = to_pixels(point)
        x += 4 * px_per_pt
        width = len(_short(str(label))) * 5.2 * px_per_pt
        height = 13 * px_per_pt
        dy = 4.0
        for step in range(12):
            bottom = y + dy * px_per_pt
            if all(
                abs(bottom - other_bottom) >= height or x + width <= left or x >= right
                for left, other_bottom, right in placed
            ):
                break
            dy = 4.0 + (step // 2 + 1) * 13.0 * (1 if step % 2 == 0 else -1)
        placed.append((x, y + dy * px_per_pt, x + width))
        ax.plot(*point, "o", mfc="none", mec="#222222", markersize=6)
        ax.annotate(
            _short(str(label)), point, xytext=(4, dy), textcoords="offset points", fontsize=8.5,
            color="#222222",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
        )  # fmt: skip


def _short(title: str, width: int = 32) -> str:
    return title if len(title) <= width else title[: width - 1] + "…"


def _importance_section(plots: _Plots, models: Mapping[str, Any]) -> str:
    hybrids = [(name, model) for name, model in models.items() if _is_hybrid(model)]
    if not hybrids:
        return _note(
            "No hybrid model in this report. Train one with <code>hybridrec train hybrid --mf "
            "NAME --kind boosted --name H</code> and add it with <code>--compare H</code>."
        )
    parts = []
    units = {
        "boosted": "split gain",
        "linear": "|coefficient| × feature sd",
        "dnn": "permutation importance",
    }
    for name, model in hybrids:
        frame = model.feature_importance()
        total = float(frame["importance"].sum())
        top = frame.head(_N_FEATURES).iloc[::-1]
        share = top["importance"].to_numpy(np.float64) / total if total > 0 else top["importance"]
        fig, axes = plots.figure(10, 0.28 * len(top) + 1.3, ncols=1)
        ax = axes[0]
        ax.barh(np.arange(len(top)), share, color=_PALETTE[0])
        ax.set_yticks(np.arange(len(top)), top["feature"].astype(str).tolist(), fontsize=9)
        ax.set_xlabel("share of total importance")
        ax.xaxis.set_major_formatter(_percent_formatter())
        ax.set_title(f"{name}: top {len(top)} of {len(frame)} features")
        unit = units.get(str(getattr(model, "kind", "")), "importance")
        parts.append(
            plots.embed(
                fig,
                f"Feature importance of {name}",
                f"{_esc(name)} ({_esc(_kind_label(model))}): each feature's share of the total "
                f"{unit}. <code>hybridrec explain {_esc(name)} --global</code> lists them all.",
            )
        )
    return "".join(parts)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


# ---------------------------------------------------------------------- HTML
_CSS = """
:root { --fg: #1d232a; --muted: #5b6673; --line: #dde3ea; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #f6f8fa; }
header { background: #1d232a; color: #fff; padding: 1.4rem 2rem; }
header h1 { margin: 0 0 .3rem; font-size: 1.6rem; }
header p { margin: 0; color: #c8d1da; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: .5rem 2rem;
      position: sticky; top: 0; }
nav a { margin-right: 1.1rem; color: var(--accent); text-decoration: none; font-size: .92rem; }
main { max-width: 1080px; margin: 0 auto; padding: 1rem 2rem 3rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 1rem 1.4rem; margin: 1.2rem 0; }
h2 { margin: .2rem 0 .8rem; font-size: 1.25rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.kind td { color: var(--muted); font-size: .82rem; max-width: 16rem; }
table.summary th { color: var(--muted); font-weight: normal; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .2rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .4rem .8rem; }
code { background: #eef1f4; padding: 0 .25rem; border-radius: 3px; font-size: .88em;
       white-space: nowrap; }
footer { text-align: center; color: var(--muted); font-size: .85rem; padding-bottom: 2rem; }
"""


def _page(title: str, names: Sequence[str], subject: _Subject, bodies: list[Any]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        hybridrec_version = version("hybridrec")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        hybridrec_version = "dev"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{a}">{_esc(h)}</a>' for a, h, _ in bodies)
    sections = "".join(
        f'<section id="{a}"><h2>{_esc(h)}</h2>{body}</section>' for a, h, body in bodies
    )
    compared = ", ".join(_esc(n) for n in names[1:])
    subtitle = f"Model <b>{_esc(subject.name)}</b> ({_esc(_kind_label(subject.model))})" + (
        f", compared with {compared}" if compared else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_esc(title)}</h1><p>{subtitle}. Generated {stamp} by hybridrec "
        f"{_esc(hybridrec_version)}.</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        "<footer>Self-contained: images are embedded, nothing is loaded from the network."
        "</footer></body></html>\n"
    )


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _kv_table(values: Mapping[str, str], css: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in values.items()
    )
    return f'<table class="{css}"><tbody>{rows}</tbody></table>'


def _frame_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_esc(cell(v))}</td>' if is_num else f"<td>{_esc(cell(v))}</td>"
            for v, is_num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
