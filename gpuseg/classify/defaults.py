"""The defaults and limits of training and prediction that ``gpuseg train --help`` shows.

A module of its own, with no imports, so the command line builds its help without loading
the forest, the engine or their libraries (:mod:`gpuseg.classify` loads its modules lazily).
"""

PROB_DTYPES = ("uint8", "float16")
"""How probabilities and uncertainty may be stored: uint8 (p = k / 255, the default) or float16."""
COMPARE_SIZE = 64
"""Edge of the central crop on which training iterations are compared (and the forest is sized)."""
GROWN_TREES = 100
"""Trees grown before the forest is sized by the data (ilastik's default forest)."""
MAX_TREES = 5000
"""More trees than this change no label a forest of fewer gives, and cost hours per volume."""
