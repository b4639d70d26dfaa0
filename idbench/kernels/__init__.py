"""idbench's compiled CPU kernels, built on first use.

``butterfly.cpp``: the Walsh-Hadamard butterfly and the fused Fastfood products run per block in
L1-sized scratch memory, far faster than composing them from torch operations.
``ellpack.cpp``: products with a sparse matrix of k entries in every row (FastJL's Q), both
directions streaming one copy of it.
``random_matrix.cpp``: counter-based random entries, the dense projection's products with the
entries drawn on the fly (random bases descent keeps a step's rows for that step's update at most,
in one reused buffer), and the rejection that draws Fastfood's chi-distributed entries.
``pooling.cpp``: the 2 x 2 max-pooling of LeNet and the CNN (torch's NCHW kernel is many times
slower on the CPU). ``bindings.cpp`` makes them one Python module (the one file compiled: it
includes the others).

They are compiled once per machine by torch's extension builder and kept in its cache
(``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``); the build directory is
named after a hash of the sources and of the torch installation's path, and the instruction set,
so another version of the sources or another CPU never reuses a wrong library, two environments
never rebuild one folder in turn, and torch's file lock in that directory makes concurrent worker
processes wait for one build. The build compiles a copy of the sources kept
under ``~/.cache/idbench/kernel-sources/`` (named like the build), so checkouts of the same
sources at other paths load the library without rebuilding it.

Every kernel has a pure-torch twin (in the module that uses it) doing the same float operations
in the same order: CUDA tensors and machines where the build fails (no compiler) use the twin and
get bit-identical results, only slower. The dense products are the exception: off the fused
path their rows are drawn on the CPU (the same entries, by the kernel or its twin) and multiplied
by torch, which adds in another order (float rounding).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
from pathlib import Path
from types import ModuleType

import torch

from idbench.atomic import write_atomic

# bindings.cpp includes the others; all of them name the build (any edit rebuilds it)
SOURCES = [Path(__file__).with_name(name)
           for name in ("bindings.cpp", "butterfly.cpp", "ellpack.cpp", "pooling.cpp",
                        "random_matrix.cpp")]


def _isa_flags() -> tuple[str, list[str]]:
    """The vector instruction set to build for: AVX2 where torch found it, else the default."""
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "avx2", ["-mavx2"]
    return "base", []


def _import_builder() -> ModuleType:
    """torch's extension builder, imported without its warning that a CUDA build of torch finds
    no CUDA runtime (it concerns CUDA extensions; these are CPU kernels), which would otherwise
    reach stderr wherever a projection is first built, one-line CLI errors included."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)
    return cpp_extension


def _stable_sources(name: str) -> Path:
    """A copy of the sources in a folder named after the build (``name`` holds their hash), so
    every checkout with these sources compiles the same paths: torch's build (ninja) would
    otherwise rebuild the shared library whenever a process from another checkout or worktree
    loads it, holding the build's lock meanwhile. Files are written atomically, so concurrent
    processes never read a half-written copy."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "idbench" / "kernel-sources" / name
    for source in SOURCES:
        target, text = folder / source.name, source.read_bytes()
        if not target.exists() or target.read_bytes() != text:
            write_atomic(target, text)
    return folder / SOURCES[0].name


@functools.lru_cache(maxsize=1)
def load() -> ModuleType | None:
    """The compiled kernels (built on the first call of the machine), or None where that fails."""
    cpp_extension = _import_builder()

    isa, flags = _isa_flags()
    try:
        # the torch installation names the build too: its include paths are in the build's
        # commands, so two environments (a checkout's and CI's) sharing one build folder would
        # each rebuild it in turn, holding the build's lock for minutes
        digest = hashlib.sha256(b"".join(source.read_bytes() for source in SOURCES)
                                + str(Path(torch.__file__).parent).encode()).hexdigest()
        name = f"idbench_kernels_{isa}_{digest[:12]}"
        return cpp_extension.load(
            name=name, sources=[str(_stable_sources(name))], verbose=False,
            # -ffp-contract=off: no fused multiply-add, so products round as they do in torch;
            # -fno-math-errno: sqrt vectorises (errno is never read; the results are the same)
            extra_cflags=["-O3", "-ffp-contract=off", "-fno-math-errno", *flags],
        )
    except Exception as error:  # noqa: BLE001 - no source, compiler or ninja, a failed build
        warnings.warn(
            f"idbench: the CPU kernels could not be built ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); using the pure-torch path "
            "(same results, slower)", RuntimeWarning, stacklevel=2,
        )
        return None


def for_tensor(x: torch.Tensor) -> ModuleType | None:
    """The compiled kernels if they serve ``x`` (a CPU tensor, and the build succeeded), else None."""
    return load() if x.device.type == "cpu" else None
