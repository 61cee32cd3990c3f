"""The reference study, run by simulated users: users (habits), protocols (Table 2), the runner and its report.

* :mod:`.users` — seeded models of a person's habits: thresholds by eye, watershed windows, brush strokes.
* :mod:`.protocols` — S1/S2/S3, gWS, cWS, ML1–ML3, MLX<coverage>, on the raw and the filtered tomogram.
* :mod:`.run` — every user × protocol, resumable, into one folder with a manifest.
* :mod:`.report` — fractions, spread, disagreement and error: JSON, CSV, a terminal table.
* :mod:`.uncertainty` — the interval one user can report for the active fraction, from one forest's
  probabilities (:func:`active_fraction_interval`).
"""

from .protocols import parse_protocols
from .run import DEFAULT_PROTOCOLS, run_study
from .uncertainty import FractionInterval, active_fraction_interval
from .users import User

__all__ = ["DEFAULT_PROTOCOLS", "FractionInterval", "User", "active_fraction_interval", "parse_protocols", "run_study"]
