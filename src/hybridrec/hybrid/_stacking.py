"""Out-of-fold matrix-factorization features: the leak-free half of the hybrid model.

A regressor trained on features from an MF model that saw the very ratings it is asked to
predict learns to trust those features far too much (the MF fits its training ratings much
better than new ones). So, as in stacking, the features of each training rating come from an
MF fitted on the *other* folds, and the behavioural statistics likewise; at prediction time both
come from the MF fitted on all training ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hybridrec._core.columns import ITEM_COL, USER_COL
from hybridrec.hybrid._features import RatingStats
from hybridrec.mf import MatrixFactorization

MF_FEATURES = (
    "mf.prediction",
    "mf.user_intercept",
    "mf.item_intercept",
    "mf.known_user",
    "mf.known_item",
)


@dataclass
class BaseFeatures:
    """The rating-derived inputs of the regressor: an MF model and behaviour statistics."""

    mf: MatrixFactorization
    user_stats: RatingStats
    item_stats: RatingStats

    @classmethod
    def fit(cls, ratings: pd.DataFrame, make_mf: Callable[[], MatrixFactorization]) -> BaseFeatures:
        mf = make_mf().fit(ratings)
        return cls.from_mf(mf, ratings)

    @classmethod
    def from_mf(cls, mf: MatrixFactorization, ratings: pd.DataFrame) -> BaseFeatures:
        return cls(mf, RatingStats.fit(ratings, USER_COL), RatingStats.fit(ratings, ITEM_COL))

    @property
    def columns(self) -> list[str]:
        return [*MF_FEATURES, *self.user_stats.columns, *self.item_stats.columns]

    def matrix(
        self,
        users: np.ndarray,
        items: np.ndarray,
        *,
        cold_users: np.ndarray | None = None,
        cold_items: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature rows for (user, item) pairs; rows flagged cold are built as if the user
        (item) were unknown, which teaches the regressor what cold start looks like."""
        mf = self.mf
        u = mf.user_vocab_.index_of(users)
        i = mf.item_vocab_.index_of(items)
        if cold_users is not None:
            u = np.where(cold_users, -1, u)
        if cold_items is not None:
            i = np.where(cold_items, -1, i)
        pred = mf.predict_indices(u, i)
        bu = np.where(u >= 0, mf.user_bias_[np.maximum(u, 0)], 0.0)
        bi = np.where(i >= 0, mf.item_bias_[np.maximum(i, 0)], 0.0)
        user_beh = self.user_stats.lookup(users)
        item_beh = self.item_stats.lookup(items)
        if cold_users is not None and cold_users.any():
            user_beh[cold_users] = self.user_stats.unknown(int(cold_users.sum()))
        if cold_items is not None and cold_items.any():
            item_beh[cold_items] = self.item_stats.unknown(int(cold_items.sum()))
        return np.column_stack(
            [pred, bu, bi, (u >= 0).astype(float), (i >= 0).astype(float), user_beh, item_beh]
        )


def out_of_fold_matrix(
    train: pd.DataFrame,
    make_mf: Callable[[], MatrixFactorization],
    n_folds: int,
    seed: int,
    cold_users: np.ndarray,
    cold_items: np.ndarray,
    on_fold: Callable[[], None] | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Base-feature rows for every training rating (or the ``rows`` mask's, in order), each
    from models fitted without its fold (on all the other folds' ratings, sampled or not)."""
    folds = np.random.default_rng([seed, 1]).permutation(len(train)) % n_folds
    users = train[USER_COL].to_numpy()
    items = train[ITEM_COL].to_numpy()
    wanted = np.ones(len(train), dtype=bool) if rows is None else rows
    position = np.cumsum(wanted) - 1  # row of a wanted rating in the output
    out: np.ndarray | None = None
    for fold in range(n_folds):
        inside = folds == fold
        base = BaseFeatures.fit(train.loc[~inside], make_mf)
        pick = inside & wanted
        block = base.matrix(
            users[pick],
            items[pick],
            cold_users=cold_users[pick],
            cold_items=cold_items[pick],
        )
        if out is None:
            out = np.empty((int(wanted.sum()), block.shape[1]))
        out[position[pick]] = block
        if on_fold is not None:
            on_fold()
    assert out is not None
    return out


def new_user_matrix(
    train: pd.DataFrame,
    make_mf: Callable[[], MatrixFactorization],
    n_folds: int,
    seed: int,
    on_fold: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Base-feature rows for every training rating as if its user were new (simulated new
    users): the *users* are split into ``n_folds`` groups and each group's ratings get the
    cold-user rows (:meth:`BaseFeatures.matrix` with every row flagged cold) of an MF and item
    statistics fitted without any rating of that group, so nothing the features are built from
    has seen those users. Returns the rows and each row's user group."""
    users = train[USER_COL].to_numpy()
    items = train[ITEM_COL].to_numpy()
    unique = np.unique(users)
    groups = np.random.default_rng([seed, 4]).permutation(unique.size) % n_folds
    group = groups[np.searchsorted(unique, users)]
    out: np.ndarray | None = None
    for fold in range(n_folds):
        inside = group == fold
        if not inside.any() or inside.all():
            continue
        base = BaseFeatures.fit(train.loc[~inside], make_mf)
        block = base.matrix(users[inside], items[inside], cold_users=np.ones(inside.sum(), bool))
        if out is None:
            out = np.zeros((len(train), block.shape[1]))
        out[inside] = block
        if on_fold is not None:
            on_fold()
    if out is None:
        raise ValueError("new-user training needs at least two users")
    return out, group


# The base columns a new user's row carries information in (the user-side ones are constants).
NEW_USER_BASE = (
    "mf.prediction",
    "mf.item_intercept",
    "mf.known_item",
    "item.n_log",
    "item.mean",
    "item.std",
)
# Ridge penalties tried, per training row, on the standardised columns: one for the attributes'
# main effects, one for the attribute × genre interactions (the item's rating statistics and the
# intercept are not penalised). Each pair is scored by cross-validation over the
# simulated-new-user groups; the largest all but switch the attributes off.
NEW_USER_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
_BASE_PENALTY = 1e-4
_CHUNK = 20_000


@dataclass
class NewUserRidge:
    """The dedicated new-user model: a ridge regression over what is known of a user who has
    no ratings (the user's attributes) and of the item (its rating statistics from the MF
    training data, its attributes), plus every user attribute × item multi-hot (genre)
    interaction. Trained on simulated new users (:func:`new_user_matrix`)."""

    base_columns: list[str]  # names of the base-feature columns used
    user_columns: list[str]
    item_columns: list[str]
    interact: list[str]  # item columns crossed with every user column
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    penalty: float  # on the attributes' main effects
    interaction_penalty: float
    cv_rmse: dict[str, float]

    @staticmethod
    def _design(
        base: np.ndarray, user_attr: np.ndarray, item_attr: np.ndarray, crossed: np.ndarray
    ) -> np.ndarray:
        inter = (user_attr[:, :, None] * crossed[:, None, :]).reshape(len(base), -1)
        return np.hstack([base, user_attr, item_attr, inter])

    @classmethod
    def fit(
        cls,
        base: np.ndarray,
        user_attr: np.ndarray,
        item_attr: np.ndarray,
        y: np.ndarray,
        group: np.ndarray,
        *,
        base_columns: Sequence[str],
        user_columns: Sequence[str],
        item_columns: Sequence[str],
        interact: Sequence[str],
    ) -> NewUserRidge:
        """``base``: rows of :func:`new_user_matrix` (all base columns); ``group``: each row's
        user group, for choosing the penalty by leave-one-group-out cross-validation."""
        b_idx = [list(base_columns).index(c) for c in NEW_USER_BASE]
        x_idx = [list(item_columns).index(c) for c in interact]
        n = len(y)

        def chunks() -> Any:
            for start in range(0, n, _CHUNK):
                sl = slice(start, start + _CHUNK)
                yield (
                    sl,
                    cls._design(
                        base[sl][:, b_idx], user_attr[sl], item_attr[sl], item_attr[sl][:, x_idx]
                    ),
                )

        total = sq = None
        for _, x in chunks():
            total = x.sum(0) if total is None else total + x.sum(0)
            sq = (x**2).sum(0) if sq is None else sq + (x**2).sum(0)
        assert total is not None and sq is not None
        mean = total / n
        scale = np.sqrt(np.maximum(sq / n - mean**2, 0.0))
        scale[scale < 1e-9] = 1.0
        labels = np.unique(group)
        p = mean.size + 1
        xtx = np.zeros((labels.size, p, p))
        xty = np.zeros((labels.size, p))
        yty = np.zeros(labels.size)
        counts = np.zeros(labels.size)
        pos = np.searchsorted(labels, group)
        for sl, x in chunks():
            z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
            for g in np.unique(pos[sl]):
                rows = pos[sl] == g
                zg, yg = z[rows], y[sl][rows]
                xtx[g] += zg.T @ zg
                xty[g] += zg.T @ yg
                yty[g] += yg @ yg
                counts[g] += rows.sum()
        # the intercept is not penalised, the item's rating statistics barely (they are few,
        # well determined, but collinear: for a new user the MF prediction is μ + b_i)
        main = np.zeros(p)
        main[len(b_idx) : len(b_idx) + len(user_columns) + len(item_columns)] = 1.0
        crossed = np.zeros(p)
        crossed[len(b_idx) + len(user_columns) + len(item_columns) : p - 1] = 1.0
        base = np.zeros(p)
        base[: len(b_idx)] = 1.0

        fixed = main, crossed, _BASE_PENALTY * base
        pairs = [(a, b) for a in NEW_USER_PENALTIES for b in NEW_USER_PENALTIES]
        sse = dict.fromkeys(pairs, 0.0)
        folds = range(labels.size) if labels.size >= 2 else range(0)  # one group: no CV
        total_xtx, total_xty = xtx.sum(0), xty.sum(0)
        for g in folds:
            others = total_xtx - xtx[g], total_xty - xty[g]
            solutions = _ridge_path(*others, n - counts[g], pairs, *fixed)
            for pair, w in zip(pairs, solutions, strict=True):
                sse[pair] += float(yty[g] - 2 * w @ xty[g] + w @ xtx[g] @ w)
        cv = {f"{a:g},{b:g}": float(np.sqrt(max(e, 0.0) / n)) for (a, b), e in sse.items()}
        cv = cv if folds else {}
        best = min(pairs, key=lambda q: cv[f"{q[0]:g},{q[1]:g}"]) if cv else (1.0, 1.0)
        (w,) = _ridge_path(total_xtx, total_xty, n, [best], *fixed)
        return cls(
            base_columns=list(NEW_USER_BASE),
            user_columns=list(user_columns),
            item_columns=list(item_columns),
            interact=list(interact),
            mean=mean,
            scale=scale,
            coef=w[:-1],
            intercept=float(w[-1]),
            penalty=float(best[0]),
            interaction_penalty=float(best[1]),
            cv_rmse=cv,
        )

    def predict(
        self,
        base: np.ndarray,
        base_columns: Sequence[str],
        user_attr: np.ndarray,
        item_attr: np.ndarray,
        item_columns: Sequence[str],
    ) -> np.ndarray:
        """Predicted ratings (unclipped) for rows of base features (all ``base_columns``) and
        encoded user and item attributes."""
        b_idx = [list(base_columns).index(c) for c in self.base_columns]
        x_idx = [list(item_columns).index(c) for c in self.interact]
        out = np.empty(len(base))
        for start in range(0, len(base), _CHUNK):
            sl = slice(start, start + _CHUNK)
            x = self._design(
                base[sl][:, b_idx], user_attr[sl], item_attr[sl], item_attr[sl][:, x_idx]
            )
            out[sl] = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return out

    def contributions(
        self,
        base: np.ndarray,
        base_columns: Sequence[str],
        user_attr: np.ndarray,
        item_attr: np.ndarray,
        item_columns: Sequence[str],
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Names, values and contributions of one row's design columns (plus the intercept as
        the last contribution); they sum to the unclipped prediction."""
        b_idx = [list(base_columns).index(c) for c in self.base_columns]
        x_idx = [list(item_columns).index(c) for c in self.interact]
        x = self._design(base[:1, b_idx], user_attr[:1], item_attr[:1], item_attr[:1, x_idx])[0]
        names = [*self.base_columns, *self.user_columns, *self.item_columns]
        names += [f"{u} × {i}" for u in self.user_columns for i in self.interact]
        contrib = (x - self.mean) / self.scale * self.coef
        return names, x, np.append(contrib, self.intercept)

    @property
    def n_features(self) -> int:
        n_user, n_item = len(self.user_columns), len(self.item_columns)
        return len(self.base_columns) + n_user + n_item + n_user * len(self.interact)

    def to_meta(self) -> dict[str, Any]:
        return {
            "base_columns": self.base_columns,
            "user_columns": self.user_columns,
            "item_columns": self.item_columns,
            "interact": self.interact,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "penalty": self.penalty,
            "interaction_penalty": self.interaction_penalty,
            "cv_rmse": self.cv_rmse,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> NewUserRidge:
        return cls(
            base_columns=list(meta["base_columns"]),
            user_columns=list(meta["user_columns"]),
            item_columns=list(meta["item_columns"]),
            interact=list(meta["interact"]),
            mean=np.asarray(meta["mean"], dtype=np.float64),
            scale=np.asarray(meta["scale"], dtype=np.float64),
            coef=np.asarray(meta["coef"], dtype=np.float64),
            intercept=float(meta["intercept"]),
            penalty=float(meta["penalty"]),
            interaction_penalty=float(meta["interaction_penalty"]),
            cv_rmse={k: float(v) for k, v in meta.get("cv_rmse", {}).items()},
        )


def _ridge_path(
    gram: np.ndarray,
    rhs: np.ndarray,
    rows: float,
    pairs: Sequence[tuple[float, float]],
    main: np.ndarray,
    crossed: np.ndarray,
    fixed: np.ndarray,
) -> list[np.ndarray]:
    """Ridge weights for each penalty pair ``(a, b)``: the solutions of
    ``(gram + rows · diag(a · main + b · crossed + fixed)) w = rhs`` (``main`` and ``crossed`` are
    0/1 masks of the penalised columns, ``fixed`` a penalty that does not vary).

    The crossed block's penalty is a multiple of the identity, so one eigendecomposition of its
    Gram block serves every pair; each pair then solves only the small system of the other
    columns (their Schur complement) and gets the crossed weights by back-substitution: exact,
    and far cheaper than one factorisation of the whole matrix per pair."""
    k = crossed > 0
    s = ~k
    evals, evecs = np.linalg.eigh(gram[np.ix_(k, k)])
    coupling = gram[np.ix_(s, k)] @ evecs  # A_sk V
    rhs_k = evecs.T @ rhs[k]
    out = []
    for a, b in pairs:
        inverse = 1.0 / (evals + rows * b)  # (A_kk + rows · b · I)⁻¹ = V diag(inverse) Vᵀ
        schur = gram[np.ix_(s, s)] - (coupling * inverse) @ coupling.T
        schur[np.diag_indices_from(schur)] += rows * (a * main[s] + fixed[s])
        w = np.empty_like(rhs)
        w[s] = np.linalg.solve(schur, rhs[s] - (coupling * inverse) @ rhs_k)
        w[k] = evecs @ (inverse * (rhs_k - coupling.T @ w[s]))
        out.append(w)
    return out
