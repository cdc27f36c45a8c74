"""How much can demographics alone beat "biases only" for fully cold users? (MovieLens 100K)

Protocol ``ml100k-cold-user-10fold``, the folds of ``cold_start_ml100k.py``: the users are dealt
into 10 random groups (seed 42, ``partition_scenario``) and fold ``f`` holds out every rating of
group ``f``. The baseline is that script's "biases only" model (μ + b_i for an unknown user).
The test users' ratings are never used, neither to fit nor to choose a penalty: penalties are
chosen by an inner 5-fold CV over groups of *training* users. For every training rating the
inner CV builds an out-of-fold target, the residual the calibrated prediction leaves for a
user it has never seen (item statistics computed without the rating's user group).

Models (all predictions clipped to [1, 5]):

1. calibration: least squares of the out-of-fold residual r - μ on item statistics (b_i, the
   shrunk item mean, log n_i, the mean user bias of the item's raters, b_i · log n_i), i.e. a
   better μ + b_i for users with no history.
2. calibration + segment × item effects: for each demographic segmentation (gender, age group,
   occupation, first zip digit) a shrunk per-(segment, item) offset, fitted by backfitting on
   the *within-user* residuals r - μ - b_u - b_i (so the offsets learn how a segment rates an
   item beyond its members' overall leniency); one penalty per segmentation (or none), chosen
   by coordinate search on the inner CV.
3. calibration + attribute × item-feature ridge: ridge regression of the same within-user
   residuals on the outer product of user attributes (one-hot gender, age group, occupation,
   zip digit, gender × age group; standardized age) and item features (genres; standardized
   b_i, item mean, log n_i, year); penalty chosen on the inner CV.

    python benchmarks/cold_user_ceiling.py [--folds 10]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from _common import rmse, write_result
from cold_start_ml100k import BIASES, N_FOLDS, SEED
from mf_ml100k import load_ml100k

from hybridrec.hybrid._compare import partition_scenario
from hybridrec.mf import MatrixFactorization

INNER_FOLDS = 5
AGE_BINS = (0, 18, 25, 30, 35, 45, 50, 56, 200)
SEGMENTS = ("gender", "age", "occupation", "zip")
SEGMENT_PENALTIES = (10, 30, 100, 300, 1000, None)  # None: segmentation left out
RIDGE_PENALTIES = (1e2, 3e2, 1e3, 3e3, 1e4, 3e4, 1e5)
ITEM_FACTORS = {"num_factors": 16, "l2_reg": 8.0}  # the MF whose item factors the ridge uses
CHUNK = 20_000  # rows per block of ridge design matrix
CALIBRATION = "calibration"
SEGMENT_MODEL = "calibration + segment x item"
RIDGE_MODEL = "calibration + attribute x item-feature ridge"
MODELS = (CALIBRATION, SEGMENT_MODEL, RIDGE_MODEL)
CALIBRATION_TERMS = ("const", "b_i", "mean - mu", "log n_i", "rater bias", "b_i * log n_i")


@dataclass
class Encoded:
    """Ids are used directly as row indices (ids absent from the data are zero rows)."""

    n_users: int
    n_items: int
    segments: dict[str, np.ndarray]  # segmentation -> segment code of each user id
    attributes: np.ndarray  # user id -> user attribute vector (ridge)
    genres: np.ndarray  # item id -> genre indicators
    year: np.ndarray  # item id -> release year (missing: median)


@dataclass
class ItemStats:
    """Biases and item statistics of one set of ratings."""

    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    count: np.ndarray
    mean: np.ndarray  # item mean shrunk towards mu
    rater_bias: np.ndarray  # mean user bias of the item's raters


def encode(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> Encoded:
    """Segment codes, attribute vectors and item features, as arrays indexed by id."""
    n_users, n_items = int(ratings["userId"].max()) + 1, int(ratings["movieId"].max()) + 1
    uid = users["userId"].to_numpy()
    n_ages = len(AGE_BINS) - 1
    first_zip = users["zip"].str[0]
    codes = {
        "gender": (users["gender"] == "F").to_numpy(int),
        "age": np.digitize(users["age"], AGE_BINS) - 1,
        "occupation": pd.factorize(users["occupation"], sort=True)[0],
        "zip": np.where(first_zip.str.isdigit(), pd.to_numeric(first_zip, errors="coerce"), 10),
    }
    codes["gender x age"] = codes["gender"] * n_ages + codes["age"]
    sizes = {"gender": 2, "age": n_ages, "gender x age": 2 * n_ages}
    segments, onehots = {}, []
    for name, code in codes.items():
        segments[name] = np.zeros(n_users, int)
        segments[name][uid] = code
        onehots.append(np.eye(sizes.get(name, int(code.max()) + 1))[segments[name]])
    age = np.zeros(n_users)
    age[uid] = users["age"]
    genre_of = items[["movieId", "genres"]].explode("genres").dropna()
    names = sorted(genre_of["genres"].unique())
    genres = np.zeros((n_items, len(names)))
    genres[genre_of["movieId"].to_numpy(), [names.index(g) for g in genre_of["genres"]]] = 1
    year = np.zeros(n_items)
    year[items["movieId"].to_numpy()] = items["year"].fillna(items["year"].median()).to_numpy(float)
    return Encoded(
        n_users=n_users,
        n_items=n_items,
        segments={s: segments[s] for s in SEGMENTS},
        attributes=np.column_stack([*onehots, (age - 30) / 10]),
        genres=genres,
        year=year,
    )


def item_stats(enc: Encoded, u: np.ndarray, i: np.ndarray, y: np.ndarray) -> ItemStats:
    """Alternating least squares of μ + b_u + b_i (penalty 1, 15 sweeps) and item summaries."""
    mu = float(y.mean())
    n_u, n_i = np.bincount(u, minlength=enc.n_users), np.bincount(i, minlength=enc.n_items)
    bu = np.zeros(enc.n_users)
    for _ in range(15):
        bi = np.bincount(i, y - mu - bu[u], enc.n_items) / (n_i + 1.0)
        bu = np.bincount(u, y - mu - bi[i], enc.n_users) / (n_u + 1.0)
    return ItemStats(
        mu=mu,
        user_bias=bu,
        item_bias=bi,
        count=n_i,
        mean=(np.bincount(i, y, enc.n_items) + mu) / (n_i + 1.0),
        rater_bias=np.bincount(i, bu[u], enc.n_items) / np.maximum(n_i, 1),
    )


def within_user_residual(st: ItemStats, u: np.ndarray, i: np.ndarray, y: np.ndarray) -> np.ndarray:
    """r - μ - b_u - b_i: what is left once the user's overall leniency is known."""
    return y - st.mu - st.user_bias[u] - st.item_bias[i]


def calibration_features(st: ItemStats, i: np.ndarray) -> np.ndarray:
    """Regressors of the cold-user calibration (relative to μ) for items ``i``."""
    log_n = np.log1p(st.count[i])
    return np.column_stack(
        [
            np.ones(len(i)),
            st.item_bias[i],
            st.mean[i] - st.mu,
            log_n,
            st.rater_bias[i],
            st.item_bias[i] * log_n,
        ]
    )


def user_groups(u: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Inner-CV group (0..k-1) of every rating, drawn per user."""
    ids = np.unique(u)
    return (np.random.default_rng(seed).permutation(ids.size) % k)[np.searchsorted(ids, u)]


def out_of_fold(
    enc: Encoded, u: np.ndarray, i: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per training rating, from the ratings of the *other* user groups only: the calibration
    design row and target (r - μ), and the within-user residuals of each inner fit (column k:
    biases fitted without group k, rows of group k left 0)."""
    X = np.zeros((len(y), 6))
    target = np.zeros(len(y))
    within = np.zeros((len(y), INNER_FOLDS))
    for k in range(INNER_FOLDS):
        held = groups == k
        st = item_stats(enc, u[~held], i[~held], y[~held])
        X[held] = calibration_features(st, i[held])
        target[held] = y[held] - st.mu
        within[~held, k] = within_user_residual(st, u[~held], i[~held], y[~held])
    return X, target, within


def fit_segment_effects(
    enc: Encoded, u: np.ndarray, i: np.ndarray, r: np.ndarray, penalties: dict[str, float]
) -> dict[str, np.ndarray]:
    """Backfit r ≈ Σ_s d_s[segment_s(u), i] (2 rounds), each d_s a shrunk mean (penalty λ_s)."""
    effects = {s: np.zeros((enc.segments[s].max() + 1, enc.n_items)) for s in penalties}
    fit = np.zeros(len(r))
    for _ in range(2):
        for s, lam in penalties.items():
            g = enc.segments[s][u]
            fit -= effects[s][g, i]
            key, size = g * enc.n_items + i, effects[s].size
            total = np.bincount(key, r - fit, size)
            effects[s] = (total / (np.bincount(key, minlength=size) + lam)).reshape(-1, enc.n_items)
            fit += effects[s][g, i]
    return effects


def predict_segment_effects(
    enc: Encoded, effects: dict[str, np.ndarray], u: np.ndarray, i: np.ndarray
) -> np.ndarray:
    return sum((d[enc.segments[s][u], i] for s, d in effects.items()), np.zeros(len(u)))


def choose_segment_penalties(
    enc: Encoded,
    u: np.ndarray,
    i: np.ndarray,
    target: np.ndarray,
    within: np.ndarray,
    groups: np.ndarray,
) -> tuple[dict[str, float | None], float]:
    """Coordinate search (2 sweeps over SEGMENTS × SEGMENT_PENALTIES) of the inner-CV SSE of
    the calibrated out-of-fold residual ``target``; returns the penalties and that SSE."""

    def cv_sse(penalties: dict[str, float | None]) -> float:
        active = {s: lam for s, lam in penalties.items() if lam is not None}
        if not active:
            return float(np.sum(target**2))
        sse = 0.0
        for k in range(INNER_FOLDS):
            held = groups == k
            fit = fit_segment_effects(enc, u[~held], i[~held], within[~held, k], active)
            pred = predict_segment_effects(enc, fit, u[held], i[held])
            sse += float(np.sum((target[held] - pred) ** 2))
        return sse

    penalties: dict[str, float | None] = dict.fromkeys(SEGMENTS)
    best = cv_sse(penalties)
    for _ in range(2):
        for s in SEGMENTS:
            for lam in SEGMENT_PENALTIES:
                trial = {**penalties, s: lam}
                if trial != penalties and (score := cv_sse(trial)) < best:
                    best, penalties = score, trial
    return penalties, best


def ridge_item_features(
    enc: Encoded, st: ItemStats, train: pd.DataFrame, items: pd.DataFrame
) -> np.ndarray:
    """Genres, item statistics and MF item factors, standardized over the training ratings,
    indexed by item id (items without training ratings get zero factors)."""
    mf = MatrixFactorization(eval_fraction=0.0, seed=SEED, **ITEM_FACTORS).fit(train, items=items)
    factors = np.zeros((enc.n_items, mf.item_factors_.shape[1]))
    factors[mf.item_vocab_.ids] = mf.item_factors_
    stats = np.column_stack(
        [st.item_bias, st.mean, np.log1p(st.count), (enc.year - 1990) / 10, factors],
    )
    i_train = train["movieId"].to_numpy()
    stats = (stats - stats[i_train].mean(0)) / stats[i_train].std(0)
    return np.hstack([enc.genres, stats])


def interactions(x_user: np.ndarray, z_item: np.ndarray) -> np.ndarray:
    """Row-wise outer product x ⊗ z, flattened."""
    return (x_user[:, :, None] * z_item[:, None, :]).reshape(len(x_user), -1)


def ridge_cold_user(
    enc: Encoded,
    u: np.ndarray,
    i: np.ndarray,
    target: np.ndarray,
    within: np.ndarray,
    groups: np.ndarray,
    z_item: np.ndarray,
    r_full: np.ndarray,
) -> tuple[np.ndarray, float, float]:
    """Ridge of within-user residuals on attribute × item-feature interactions. Returns the
    coefficients (fitted on ``r_full``, all training ratings), the penalty and its inner-CV SSE."""
    p = enc.attributes.shape[1] * z_item.shape[1]
    targets = np.column_stack([within, r_full])
    gram = np.zeros((INNER_FOLDS, p, p))  # per user group: Φᵀ Φ, Φᵀ targets
    cross = np.zeros((INNER_FOLDS, p, targets.shape[1]))
    for g in range(INNER_FOLDS):
        rows = np.flatnonzero(groups == g)
        for block in np.array_split(rows, -(-len(rows) // CHUNK)):
            phi = interactions(enc.attributes[u[block]], z_item[i[block]])
            gram[g] += phi.T @ phi
            cross[g] += phi.T @ targets[block]
    eye = np.eye(p)
    scores = {}
    for lam in RIDGE_PENALTIES:
        sse = 0.0
        for k in range(INNER_FOLDS):
            held = groups == k
            coef = np.linalg.solve(
                gram.sum(0) - gram[k] + lam * eye, cross.sum(0)[:, k] - cross[k][:, k]
            )
            pred = interactions(enc.attributes[u[held]], z_item[i[held]]) @ coef
            sse += float(np.sum((target[held] - pred) ** 2))
        scores[lam] = sse
    lam = min(scores, key=scores.get)
    return np.linalg.solve(gram.sum(0) + lam * eye, cross.sum(0)[:, -1]), lam, scores[lam]


def run_fold(
    enc: Encoded, items: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, Any]:
    """Fit the baseline and the three cold-user models on ``train``; RMSEs on ``test``."""
    start = time.perf_counter()
    u, i = train["userId"].to_numpy(), train["movieId"].to_numpy()
    y = train["rating"].to_numpy(np.float64)
    tu, ti = test["userId"].to_numpy(), test["movieId"].to_numpy()
    ty = test["rating"].to_numpy(np.float64)
    biases = MatrixFactorization(eval_fraction=0.0, seed=SEED, **BIASES).fit(train, items=items)
    baseline = biases.predict(tu, ti)

    groups = user_groups(u, INNER_FOLDS)
    X, target, within = out_of_fold(enc, u, i, y, groups)
    weights = np.linalg.lstsq(X, target, rcond=None)[0]
    resid = target - X @ weights  # what a demographic model must explain, per rating
    st = item_stats(enc, u, i, y)
    r_full = within_user_residual(st, u, i, y)
    calibrated = st.mu + calibration_features(st, ti) @ weights

    penalties, seg_sse = choose_segment_penalties(enc, u, i, resid, within, groups)
    active = {s: lam for s, lam in penalties.items() if lam is not None}
    effects = fit_segment_effects(enc, u, i, r_full, active)
    segment = calibrated + predict_segment_effects(enc, effects, tu, ti)

    z_item = ridge_item_features(enc, st, train, items)
    coef, ridge_lam, ridge_sse = ridge_cold_user(enc, u, i, resid, within, groups, z_item, r_full)
    ridge = calibrated + interactions(enc.attributes[tu], z_item[ti]) @ coef

    base_mse = float(np.mean(resid**2))
    preds = {CALIBRATION: calibrated, SEGMENT_MODEL: segment, RIDGE_MODEL: ridge}
    return {
        "test_users": int(np.unique(tu).size),
        "test_ratings": len(ty),
        "biases only": rmse(ty, baseline),
        **{name: rmse(ty, np.clip(p, 1, 5)) for name, p in preds.items()},
        "calibration_weights": dict(zip(CALIBRATION_TERMS, weights.tolist(), strict=True)),
        "segment_penalties": penalties,
        "segment_inner_cv_mse_gain": base_mse - seg_sse / len(y),
        "ridge_penalty": ridge_lam,
        "ridge_inner_cv_mse_gain": base_mse - ridge_sse / len(y),
        "seconds": round(time.perf_counter() - start, 1),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-model gain over biases only (mean ± sd over folds), and a one-line conclusion."""
    table = pd.DataFrame(rows).set_index("fold")
    gains = {m: table["biases only"] - table[m] for m in MODELS}
    summary = {
        m: {
            "mean": float(g.mean()),
            "std": float(g.std()),
            "min": float(g.min()),
            "max": float(g.max()),
            "folds_better": int((g > 0).sum()),
            "folds": len(g),
        }
        for m, g in gains.items()
    }
    best = max(summary, key=lambda m: summary[m]["mean"])
    s = summary[best]
    conclusion = (
        f"Best demographics-only cold-user model ({best}) gains {s['mean']:+.4f} ± "
        f"{s['std']:.4f} RMSE over biases only (better in {s['folds_better']}/{s['folds']} "
        f"folds), i.e. {100 * s['mean'] / table['biases only'].mean():.2f} % of the baseline "
        f"RMSE and {s['mean'] / s['std']:.1f} fold standard deviations: for users with no "
        "ratings, demographics add little beyond the item biases."
    )
    print(table[["biases only", *MODELS]].round(4).to_string())
    for m, g in summary.items():
        print(
            f"{m}: gain {g['mean']:+.4f} ± {g['std']:.4f}, better {g['folds_better']}/{g['folds']}"
        )
    return {"gain_vs_biases_only": summary, "conclusion": conclusion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=N_FOLDS, help="folds to run (of 10)")
    args = parser.parse_args()
    start = time.perf_counter()
    ratings, users, items = load_ml100k()
    ratings = ratings[["userId", "movieId", "rating"]]
    enc = encode(ratings, users, items)
    rows: list[dict[str, Any]] = []
    for fold, train, test in partition_scenario(ratings, "cold-user", N_FOLDS, SEED):
        if fold >= args.folds:
            break
        rows.append({"fold": fold + 1, **run_fold(enc, items, train, test)})
        print({k: v for k, v in rows[-1].items() if k != "calibration_weights"}, flush=True)
    payload = {
        "protocol": (
            "ml100k-cold-user-10fold: users dealt into 10 random groups (seed 42); fold f holds "
            "out every rating of group f (10 % of users held out entirely, each user cold once); "
            "penalties by inner 5-fold CV over training-user groups"
        ),
        "baseline": "biases only: MatrixFactorization(num_factors=1, l2_reg=1e6, l2_reg_item=1e6)",
        "models": list(MODELS),
        "per_fold": rows,
        **summarize(rows),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(payload["conclusion"])
    print(f"wrote {write_result('cold_user_ceiling', payload)}")


if __name__ == "__main__":
    main()
