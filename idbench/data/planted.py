"""``planted-lstsq``: a least-squares problem whose intrinsic dimension is a planted rank k.

Inputs x in R^D lie in a random k-dimensional subspace (x = a B / sqrt(k), B a fixed k x D Gaussian
matrix, a ~ N(0, I_k)), and targets are exact linear responses y = x . w* of a fixed random w*
(w* ~ N(0, I / D), so y ~ N(0, 1)). The model (``planted-lstsq`` in :mod:`idbench.models.planted`)
is a bias-free linear map w of D parameters starting at w = 0, trained on the mean squared error.

Why the answer is k: w = P z fits every sample exactly iff B P z = B w* (the training inputs span
the row space of B, as there are more of them than k), which a d-dimensional subspace can reach
for any w* iff rank(B P) = k, i.e. generically iff d >= k. So d_int100 = rank (the planted rank
of the data matrix X, whatever D is). Validation and test samples come from the same subspace, so
a solution of the training set predicts them exactly too.

A sample's score is 1 when |prediction - y| <= tol * max(1, |y|), so a score of 1.0 means solved.
Options: ``rank`` (k), ``features`` (D), ``seed`` and ``tol``; ``2 k + 16`` training samples and
``VAL_TEST_SAMPLES`` each for validation and test (the split options do not apply).
"""

from __future__ import annotations

import math

import torch

from idbench.data.dataset import DATASETS, LoadContext
from idbench.data.toy import ExactTargets
from idbench.errors import IdbenchError

VAL_TEST_SAMPLES = 64


@DATASETS.register("planted-lstsq")
def planted_lstsq(
    *, ctx: LoadContext, rank: int = 10, features: int = 300, seed: int = 0, tol: float = 1e-2
) -> ExactTargets:
    """x = a B / sqrt(rank), y = x . w* (see the module docstring); d_int100 = ``rank``."""
    if not 1 <= rank <= features or tol <= 0:
        raise IdbenchError(
            f"planted-lstsq needs 1 <= rank <= features and tol > 0, got rank={rank}, "
            f"features={features}, tol={tol}"
        )
    gen = torch.Generator().manual_seed(seed)
    B = torch.randn(rank, features, generator=gen, dtype=torch.float64)
    w_star = torch.randn(features, generator=gen, dtype=torch.float64) / math.sqrt(features)
    n_train = 2 * rank + 16
    a = torch.randn(n_train + 2 * VAL_TEST_SAMPLES, rank, generator=gen, dtype=torch.float64)
    x = a @ B / math.sqrt(rank)
    y = (x @ w_star).unsqueeze(1)
    x, y = x.float().to(ctx.device), y.float().to(ctx.device)
    val = slice(n_train, n_train + VAL_TEST_SAMPLES)
    test = slice(n_train + VAL_TEST_SAMPLES, None)
    return ExactTargets(
        name=ctx.name,
        x_train=x[:n_train], y_train=y[:n_train],
        x_val=x[val], y_val=y[val],
        x_test=x[test], y_test=y[test],
        input_shape=(features,),
        num_classes=1,
        metric="predictions-within-tol",
        tol=tol,
    )
