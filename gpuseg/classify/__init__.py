"""Random-forest pixel classification (ilastik's method): scribbles → forest → every voxel, block by block.

One job per module; each imports only those above it in this list (no cycle):

* :mod:`.forest` — the :class:`Forest` (flat numbers-only trees) and its training with scikit-learn.
* :mod:`.model_file` — :func:`save` / :func:`load`: the ``.npz`` model file, checked, never unpickled.
* :mod:`.cpu` — the CPU predictor: scikit-learn's tree traversal over the flat arrays.
* :mod:`.gpu` — the GPU predictor: a CUDA kernel over a packed layout, and its numpy reference.
* :mod:`.predictor` — ``predict_proba`` / ``predict``: the CPU or GPU predictor, by the features' device.
* :mod:`.annotations` — scribbles from volumes or ilastik projects, merged and checked.
* :mod:`.samples` — feature vectors of the labelled voxels, computed around them only.
* :mod:`.pixel` — :func:`train` on scribbles and :func:`predict` of volumes through the block engine.

Examples
--------
>>> import numpy as np
>>> from gpuseg import classify
>>> rng = np.random.default_rng(0)
>>> truth = (np.indices((16, 16, 16)).sum(axis=0) > 22).astype(np.uint8) + 1
>>> image = (truth * 60.0 + rng.normal(0, 10, truth.shape)).astype(np.float32)
>>> scribbles = np.zeros_like(truth); scribbles[8, ::2, ::2] = truth[8, ::2, ::2]
>>> result = classify.train(image, scribbles, features="gaussian:1.0", trees=5, device="cpu")
>>> isinstance(result.forest, classify.Forest), result.forest.classes.tolist()
(True, [1, 2])
>>> bool((classify.predict(image, result.forest, device="cpu").labels == truth).mean() > 0.9)
True
"""

import lazy_loader

# Lazily, as scikit-image: a submodule is imported when one of its names is first used, so the
# command line builds its help without this package's dependencies. The names: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
