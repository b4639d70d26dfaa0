"""The learning-rate policy: how each probe's rate is tuned and carried.

- :mod:`idbench.lr.protocols`: one strategy per protocol (where the subspace rate is tuned, and
  how the d search runs under it);
- :mod:`idbench.lr.carry`: how a rate tuned at one d is carried to another, and the window a
  tuning searches;
- :mod:`idbench.lr.tuner`: the tunings of a cell, one Optuna study each (:mod:`idbench.tuning`),
  re-made from the stored runs when its journal is gone.
"""
