"""End-to-end benchmark: ingest → filter → segment (Otsu, watershed, random forest) → compare, per size and device.

* :mod:`.pipeline` — the stages (the gpuseg API, out of core) and the setup (phantom, TIFF slices, scribbles);
* :mod:`.references` — the whole-array scipy / scikit-image / scikit-learn / numpy references;
* :mod:`.measure` — fresh processes, peak RSS of a process tree, phase times of dask tasks, the machine;
* :mod:`.suite` — runs sizes × stages × devices and builds the records;
* :mod:`.report` — the table, the JSON file and the plot.

``gpuseg bench`` (:mod:`gpuseg.cli.bench`) is the command.
"""

from .pipeline import STAGES, plan
from .suite import run

__all__ = ["STAGES", "plan", "run"]
