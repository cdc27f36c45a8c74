"""The ``%%bigquery`` cells of the reference notebook, read from ../shared/reference/ at test time.

The reference is a text export of the notebook: code cells are fenced blocks, and a long cell
can be broken over several blocks. A block whose first line is ``%%bigquery …`` (or
``In [N]: %%bigquery …``) starts a SQL cell; a block that starts another cell (``In [``,
``Out[``, shell or Python code) ends it; any other block continues the open cell.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# ../shared/reference/ beside the repository (a worktree elsewhere sets HYBRIDREC_REFERENCE_DIR)
REFERENCE = Path(
    os.environ.get("HYBRIDREC_REFERENCE_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "reference"
)
NOTEBOOK = REFERENCE / "als_bqml_hybrid_notebook.txt"

_MAGIC = re.compile(r"^(?:In \[\s*\d*\]:\s*)?%%bigquery\b(.*)$")
_OTHER_CELL = re.compile(r"^(?:In \[|Out\[|import |!|%%|os\.|PROJECT)")

#: The companion notebook's CREATE MODEL, which the reference copies with `bq cp` (a set-up cell).
SETUP = """CREATE OR REPLACE MODEL movielens.recommender_16
OPTIONS(model_type='matrix_factorization', user_col='userId', item_col='movieId',
        rating_col='rating', l2_reg=0.2, num_factors=16)
AS SELECT userId, movieId, rating FROM movielens.ratings"""


def notebook_cells(path: Path = NOTEBOOK) -> list[tuple[str, str]]:
    """``(magic arguments, SQL)`` of every ``%%bigquery`` cell, in order."""
    blocks = re.findall(r"```\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)
    cells: list[tuple[str, list[str]]] = []
    open_cell = False
    for block in blocks:
        lines = block.strip("\n").splitlines()
        first = next((line.strip() for line in lines if line.strip()), "")
        magic = _MAGIC.match(first)
        if magic:
            body = lines[[line.strip() for line in lines].index(first) + 1 :]
            cells.append((magic.group(1).strip(), body))
            open_cell = True
        elif _OTHER_CELL.match(first):
            open_cell = False
        elif open_cell:
            cells[-1][1].extend(lines)
    return [(args, "\n".join(body).strip().rstrip(";")) for args, body in cells]
