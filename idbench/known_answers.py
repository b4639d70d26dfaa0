"""The known-answer family: problems whose intrinsic dimension is known exactly.

- ``toy-sums`` (Li et al. 2018) at several group counts and odd group sizes: D = groups x
  group_size parameters, d_int100 = groups;
- ``planted-lstsq``: least squares on data of planted rank k, d_int100 = k whatever D is.

No D here is a power of two, so the structured projections are exercised with padding;
toy(10, 100) is the shipped toy (suites/toy.yaml). With an optimiser that converges (``lbfgs``),
every projection must give d_int100 == answer exactly; how far a first-order protocol lands above
it is that protocol's optimiser bias.

Why a first-order protocol misses: at d = answer the subspace problem is a square random k x k
system (S P for the toy, B P for the planted problem), whose condition number is heavy-tailed for
every projection alike (toy, k = 10, 300 bases each: median 30-40, 99th percentile 1,000-2,000
for dense, sparse, Fastfood and FastJL). A basis in that tail is not solved by Adam in 2,000
steps, so the probe at d = answer fails on that seed: FastJL's 11 on the shipped toy is its
seed-1 basis at condition number ~1,100 (tests/test_known_answers.py), not a projection defect.

One real exception to "exact": the sparse projection's entries are +-c, so for the toy, whose
loss sees only group sums, S P is a matrix of small integers (times c) and is singular for a few
percent of bases when groups are few and small (toy(7, 21): 5% of seeds; toy(3, 33): 10%). On such
a basis d = answer genuinely cannot solve the problem, and the measured d_int is above the answer;
the family's problems are chosen (and seeded) where the measured bases are nonsingular.

    for problem in FAMILY:
        row = idbench.measure(problem.config("fastjl", **LBFGS), out="out")
        assert row.d_hi == problem.answer
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idbench.config import MeasureConfig


@dataclass(frozen=True)
class KnownAnswer:
    """One problem of the family: its model and dataset specs, D and the exact d_int100."""

    model: str
    dataset: str
    D: int
    answer: int

    @property
    def name(self) -> str:
        return f"{self.dataset}|{self.model}"

    def config(self, projection: str, **options: Any) -> MeasureConfig:
        """A d_int100 measurement of this problem under ``projection``: the whole range 1..D is
        searched against the absolute score 1.0 (solved), once (one draw of the 3 seeds the
        family was chosen on: an exact answer has no noise to pool over draws)."""
        base = dict(model=self.model, dataset=self.dataset, projection=projection,
                    threshold=1.0, baseline="global:1.0", d_min=1, d_max=self.D,
                    resolution=0.01,  # bisect to adjacent integers for answers up to 100
                    draws=1, seeds=3)
        return MeasureConfig.build(**{**base, **options})


def toy(groups: int, group_size: int) -> KnownAnswer:
    return KnownAnswer(f"toy-sums[group_size={group_size}]", f"toy-sums[groups={groups}]",
                       groups * group_size, groups)


def planted(rank: int, features: int) -> KnownAnswer:
    return KnownAnswer("planted-lstsq", f"planted-lstsq[features={features},rank={rank}]",
                       features, rank)


FAMILY: tuple[KnownAnswer, ...] = (
    toy(3, 33), toy(9, 61), toy(10, 100), toy(13, 17), toy(25, 9), toy(60, 5),
    planted(4, 150), planted(11, 301), planted(23, 205), planted(40, 333),
)

# the protocol that must give the exact answer: full-batch LBFGS (100 outer steps of up to 20
# iterations each; it stops early once converged), one seed, no tuning (the line search sets the
# step). The budget is set for the worst-conditioned bases of the family (condition number
# ~1,500), which fewer outer steps leave unsolved.
LBFGS: dict[str, Any] = dict(optimizer="lbfgs", steps=100, batch_size=1024, schedule="constant",
                             warmup=0.0, seeds=1, tune_trials=0, lr=1.0)
