"""Seeds derived from structured keys, so every random object is reproducible from one number.

``derive_seed(seed, "fastfood", 3)`` gives a stable 63-bit seed for, say, the third compartment's
basis; the same inputs give the same seed on every machine and Python version (no ``hash()``).
Random state is always drawn from an explicit CPU ``torch.Generator`` and moved to the device after,
so a basis is bit-identical on CPU and GPU runs.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any sequence of ints and strings."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def cpu_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded with ``derive_seed(*parts)``."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(*parts))
