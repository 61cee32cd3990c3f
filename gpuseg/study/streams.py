"""Random streams of the simulated users: one per user and per named habit or decision.

Every random choice of a study is drawn from a stream keyed by the study seed, the user's index
and names (``"threshold"``, ``"raw"``, ``"paint"``, ``"MLX10 raw z=12"``, ...) through a numpy
``SeedSequence``, so a choice never depends on the order others were made in, on the scheduler or
on the worker count.
"""

from __future__ import annotations

import zlib

import numpy as np


def user_rng(seed: int, user: int, *stream: str) -> np.random.Generator:
    """The random stream of one user's habit or decision: keyed by the study seed, the user and names.

    Examples
    --------
    >>> a = user_rng(0, 1, "threshold").random(); b = user_rng(0, 1, "threshold").random()
    >>> a == b, a == user_rng(0, 2, "threshold").random()
    (True, False)
    """
    keys = (int(user), *(zlib.crc32(s.encode()) for s in stream))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=keys))
