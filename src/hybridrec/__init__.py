"""hybridrec: hybrid recommendation on rating data, on one laptop or on Spark."""

from hybridrec._errors import DataError, HybridrecError, ModelError, NotFoundError

__version__ = "0.1.0"

__all__ = ["DataError", "HybridrecError", "ModelError", "NotFoundError", "__version__"]
