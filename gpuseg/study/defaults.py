"""The defaults of the interval one user can report, importable without the engine (``gpuseg interval --help``).

:mod:`gpuseg.study.uncertainty` explains them; ``docs/study.md`` shows how WIDEN was calibrated.
"""

ACTIVE = 1
"""The class value of active material (the project's convention)."""
DELTA = 0.25
"""The threshold shift in p(active) that makes a voxel undecided (a quarter of the trees or more dissent)."""
WIDEN = 2.7
"""How many times the threshold interval is widened: calibrated (the module notes, ``docs/study.md``)."""
