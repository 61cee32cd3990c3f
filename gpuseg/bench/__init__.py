"""End-to-end benchmark: ingest → filter → segment (Otsu, watershed, random forest) → compare, per size and device.

* :mod:`.pipeline` — the stages (the gpuseg API, out of core) and the setup (phantom, TIFF slices, scribbles);
* :mod:`.references` — the whole-array scipy / scikit-image / scikit-learn / numpy references;
* :mod:`.measure` — fresh processes, peak RSS of a process tree, phase times of dask tasks, the machine;
* :mod:`.suite` — runs sizes × stages × devices and builds the records;
* :mod:`.report` — the table, the JSON file and the plot.

``gpuseg bench`` (:mod:`gpuseg.cli.bench`) is the command.
"""

import lazy_loader

# Lazily, as scikit-image: a submodule is imported when one of its names is first used, so the
# command line builds its help without this package's dependencies. The names: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
