"""Matplotlib through its Agg canvas (no pyplot, no global state, no display), imported
lazily; figures embedded as PNG ``data:`` URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridrec._errors import HybridrecError
from hybridrec.report._html import esc

PALETTE = (
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


class Plots:
    """Figures drawn on matplotlib's Agg canvas and returned as ``<figure>`` HTML."""

    def __init__(self, figure_cls: Any, canvas_cls: Any) -> None:
        self._figure_cls = figure_cls
        self._canvas_cls = canvas_cls

    @classmethod
    def create(cls) -> Plots:
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
            f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )


def label_points(ax: Any, points: np.ndarray, labels: Sequence[str]) -> None:
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


def percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)
