"""idbench: measure the intrinsic dimension of neural-network training objectives."""

from idbench.errors import IdbenchError

__version__ = "0.1.0"

__all__ = ["IdbenchError", "__version__"]
