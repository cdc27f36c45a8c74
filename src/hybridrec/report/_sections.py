"""The report's sections, one function each: a chart and/or a table as an HTML fragment."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, RATING_COL, USER_COL
from hybridrec._core.output import cell
from hybridrec.report._data import (
    BASELINE,
    MAX_MAP_ITEMS,
    MIN_BIN_RATINGS,
    MIN_MAP_RATINGS,
    N_FEATURES,
    N_GENRES,
    N_LABELS,
    Evaluation,
    Subject,
    activity_bins,
    fingerprint_of,
    genres_of,
    is_hybrid,
    kind_label,
)
from hybridrec.report._html import esc, frame_table, kv_table, note
from hybridrec.report._plots import PALETTE, Plots, label_points, percent_formatter


def dataset_section(plots: Plots, subject: Subject, ratings: pd.DataFrame | None) -> str:
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
        if fingerprint is not None and fingerprint_of(ratings) != fingerprint:
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
        ax_hist.bar(levels, counts, width=width, color=PALETTE[0])
        ax_hist.set_xticks(levels)
    else:
        ax_hist.hist(values, bins=40, color=PALETTE[0])
    ax_hist.set_title("Rating histogram")
    ax_hist.set_xlabel("rating")
    ax_hist.set_ylabel("ratings")
    top = max(int(per_user.max()), int(per_item.max()), 2)
    bins = np.unique(np.geomspace(1, top + 1, 30).astype(int))
    ax_tail.hist(per_user, bins=bins, alpha=0.7, label="users", color=PALETTE[0])
    ax_tail.hist(per_item, bins=bins, alpha=0.6, label="items", color=PALETTE[1])
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
    return kv_table(summary, css="summary") + "".join(note(n) for n in notes) + figure


def _spread(counts: np.ndarray) -> str:
    return f"min {int(counts.min()):,}, median {np.median(counts):g}, max {int(counts.max()):,}"


def evaluation_section(plots: Plots, ev: Evaluation) -> str:
    names = [BASELINE, *ev.names]
    header = "".join(f"<th>{esc(n)}</th>" for n in names)
    kinds = "".join(f"<td>{esc(ev.kinds[n])}</td>" for n in names)
    evaluated = "".join(f"<td>{esc(ev.notes[n])}</td>" for n in names)
    rows = [
        f'<tr class="kind"><th scope="row">model</th>{kinds}</tr>',
        f'<tr class="kind"><th scope="row">evaluated on</th>{evaluated}</tr>',
    ]
    for metric in ev.metric_names():
        cells = "".join(
            f'<td class="num" data-model="{esc(n)}" data-metric="{esc(metric)}">'
            f"{esc(cell(ev.metrics[n].get(metric, math.nan))) or '—'}</td>"
            for n in names
        )
        rows.append(f'<tr><th scope="row">{esc(metric)}</th>{cells}</tr>')
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
        colours = ["#bbbbbb"] + [PALETTE[i % len(PALETTE)] for i in range(len(names) - 1)]
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
        f"RMSE and NDCG@{k} on the hold-out of {esc(ev.subject.name)} "
        f"({len(ev.actual):,} ratings). Relevant = held-out rating ≥ 4; items rated in training "
        "are not ranked.",
    )
    intro = (
        f"<p>Every model on the hold-out of <b>{esc(ev.subject.name)}</b> "
        f"({len(ev.actual):,} ratings), with BigQuery ML's metric names "
        "(<code>ML.EVALUATE</code>). The numbers are those of "
        f"<code>hybridrec evaluate NAME -k {k}</code>: the report calls the same "
        "<code>model.evaluate()</code>.</p>"
    )
    return intro + table + figure


def comparison_section(plots: Plots, frame: pd.DataFrame) -> str:
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
            colour = "#bbbbbb" if name == BASELINE else PALETTE[index % len(PALETTE)]
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
    return figure + frame_table(frame.reset_index(drop=True))


def training_section(plots: Plots, models: Mapping[str, Any]) -> str:
    logs: list[tuple[str, pd.DataFrame]] = []
    shared: list[str] = []
    for name, model in models.items():
        info = model.training_info()
        label = f"{name} (its MF)" if is_hybrid(model) else name
        same = next((other for other, seen in logs if _same_curves(seen, info)), None)
        if same is not None:
            shared.append(f"{esc(name)}'s MF has the same training log as {esc(same)}.")
            continue
        logs.append((label, info))
    fig, axes = plots.figure(10, 3.8, ncols=1)
    ax = axes[0]
    for index, (label, info) in enumerate(logs):
        colour = PALETTE[index % len(PALETTE)]
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
    table = frame_table(first_log, caption=f"ML.TRAINING_INFO: {first_label}")
    return figure + "".join(note(s) for s in shared) + table


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


def calibration_section(plots: Plots, ev: Evaluation) -> str:
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
            mean_pred, mean_true, "o-", color=PALETTE[index % len(PALETTE)], label=name,
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
            medianprops={"color": PALETTE[3]},
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
        f"predictions of {esc(first)} for each actual rating (boxes: quartiles; whiskers: "
        "1.5 IQR). Regression to the mean shows as flat boxes."
    )
    return plots.embed(fig, "Predicted vs actual rating", caption)


def activity_section(plots: Plots, ev: Evaluation) -> str:
    labels, which = activity_bins(ev.subject.activity())
    used = [b for b in range(len(labels)) if (which == b).any()]
    counts = {b: int((which == b).sum()) for b in used}
    # An RMSE over a handful of ratings is noise: such bins stay in the table, not the chart.
    charted = [b for b in used if counts[b] >= MIN_BIN_RATINGS] or used
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
        colour = "#bbbbbb" if name == BASELINE else PALETTE[index % len(PALETTE)]
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
        f"Hold-out ratings of {esc(ev.subject.name)} grouped by how many training ratings "
        "their user has. Users with few ratings are where side features (hybrid models) "
        "should help most."
        + (
            f" Bins with fewer than {MIN_BIN_RATINGS} hold-out ratings are in the table only."
            if len(charted) < len(used)
            else ""
        )
    )
    return plots.embed(fig, "RMSE by the user's number of training ratings", caption) + frame_table(
        frame
    )


def item_map_section(plots: Plots, subject: Subject) -> str:
    mf = subject.mf
    factors = np.asarray(mf.item_factors_, dtype=np.float64)
    popularity = subject.item_train_counts
    meta = mf.items_meta_
    ids = mf.item_vocab_.ids
    if factors.shape[0] < 3 or factors.shape[1] < 2:
        return note("The model has fewer than 3 items or 2 factors: no map to draw.")
    # Rarely rated items keep factors shrunk to ~0 by the regularisation: they would pile up at
    # the centre and say nothing, so the map shows items with enough ratings (at least 50 items).
    order = np.argsort(-popularity, kind="stable")[:MAX_MAP_ITEMS]
    enough = order[popularity[order] >= MIN_MAP_RATINGS]
    order = enough if enough.size >= 50 else order[:50]
    centred = factors[order] - factors[order].mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    explained = singular**2 / max(float((singular**2).sum()), 1e-12)
    genre_lists = (
        [genres_of(g) for g in meta["genres"].to_numpy()[order]]
        if "genres" in meta.columns
        else [[] for _ in order]
    )
    first = np.array([g[0] if g else "(none)" for g in genre_lists], dtype=object)
    titles = (
        meta["title"].astype(str).to_numpy()[order]
        if "title" in meta.columns
        else ids[order].astype(str)
    )
    top_genres = [g for g in pd.Series(first).value_counts().index if g != "(none)"][:N_GENRES]
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
            coords[mask, 0], coords[mask, 1], s=sizes[mask], c=PALETTE[index % len(PALETTE)],
            label=str(genre), alpha=0.55, linewidths=0,
        )  # fmt: skip
    # Where each genre sits on average, counting every genre of an item (not just its first).
    for index, genre in enumerate(top_genres):
        members = np.array([genre in g for g in genre_lists])
        centre = coords[members].mean(axis=0)
        colour = PALETTE[index % len(PALETTE)]
        ax.plot(*centre, "D", color=colour, mec="#222222", markersize=10)
    if top_genres:
        ax.plot([], [], "D", color="white", mec="#222222", markersize=8, label="genre mean")
    label_points(ax, coords[: min(N_LABELS, len(order))], titles[:N_LABELS])
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
        f"{min(N_LABELS, len(order))} most-rated titles are labelled. Items the model sees "
        "as similar sit close together."
    )
    return plots.embed(fig, "2-D PCA map of the item factors coloured by genre", caption)


def importance_section(plots: Plots, models: Mapping[str, Any]) -> str:
    hybrids = [(name, model) for name, model in models.items() if is_hybrid(model)]
    if not hybrids:
        return note(
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
        top = frame.head(N_FEATURES).iloc[::-1]
        share = top["importance"].to_numpy(np.float64) / total if total > 0 else top["importance"]
        fig, axes = plots.figure(10, 0.28 * len(top) + 1.3, ncols=1)
        ax = axes[0]
        ax.barh(np.arange(len(top)), share, color=PALETTE[0])
        ax.set_yticks(np.arange(len(top)), top["feature"].astype(str).tolist(), fontsize=9)
        ax.set_xlabel("share of total importance")
        ax.xaxis.set_major_formatter(percent_formatter())
        ax.set_title(f"{name}: top {len(top)} of {len(frame)} features")
        unit = units.get(str(getattr(model, "kind", "")), "importance")
        parts.append(
            plots.embed(
                fig,
                f"Feature importance of {name}",
                f"{esc(name)} ({esc(kind_label(model))}): each feature's share of the total "
                f"{unit}. <code>hybridrec explain {esc(name)} --global</code> lists them all.",
            )
        )
    return "".join(parts)
