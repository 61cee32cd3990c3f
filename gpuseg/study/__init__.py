"""The reference study, run by simulated users: users (habits), protocols (Table 2), the runner and its report.

* :mod:`.users` — seeded models of a person's habits: thresholds by eye, watershed windows, brush strokes.
* :mod:`.protocols` — S1/S2/S3, gWS, cWS, ML1–ML3, MLX<coverage>, on the raw and the filtered tomogram.
* :mod:`.run` — every user × protocol, resumable, into one folder with a manifest.
* :mod:`.report` — fractions, spread, disagreement and error: JSON, CSV, a terminal table.
* :mod:`.uncertainty` — the interval one user can report for the active fraction, from one forest's
  probabilities (:func:`active_fraction_interval`).
"""

import lazy_loader

# Lazily, as scikit-image: a submodule is imported when one of its names is first used, so the
# command line builds its help without this package's dependencies. The names: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
