"""The top-level package: importing hybridrec stays light (no heavy library at import time)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_hybridrec_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, hybridrec, hybridrec.hybrid.regressors;"
        "heavy = {'torch', 'lightgbm'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_hybridrec_never_imports_pyspark():
    code = (
        "import sys, hybridrec, hybridrec.cli, hybridrec.mf, hybridrec.hybrid, hybridrec.data\n"
        "from hybridrec.cli import main\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
