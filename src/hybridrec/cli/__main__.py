"""``python -m hybridrec.cli``: the same command as ``hybridrec`` (the benchmarks run it so)."""

from hybridrec.cli import main

main()
