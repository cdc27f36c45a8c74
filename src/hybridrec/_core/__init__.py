"""What several packages share, below every layer but :mod:`hybridrec._errors`: parameters,
tuning, progress, output files, rendering, column names, sparse rows and top-N selection, and
the model contract (the one :class:`~hybridrec._core.contract.Recommender` protocol and the
one registry of model kinds).

It is the one internal package other packages may import from; its modules have public names
and import nothing from the rest of hybridrec but :mod:`hybridrec._errors`.
"""
