"""The one way to run a forest: CPU or GPU predictor, chosen by the device that holds the features.

numpy features run the numba walk of :mod:`gpuseg.classify.cpu` (float64 sums, equal to
``RandomForestClassifier.predict_proba`` to the last bit); cupy features run the CUDA kernel
(:mod:`gpuseg.classify.gpu`: float32 results of float64 sums). Both walk the packed forest of
:mod:`gpuseg.classify.layout`. Everything that predicts —
the block kernel of :mod:`gpuseg.classify.pixel`, training's comparison between iterations —
goes through :func:`predict_proba` and :func:`predict`.

Examples
--------
>>> import numpy as np
>>> from gpuseg.classify import forest as fo
>>> X = np.random.default_rng(0).random((200, 3), dtype=np.float32)
>>> f = fo.train(X, np.where(X[:, 0] > 0.5, 2, 1).astype(np.uint8), trees=5)
>>> proba_dtype(X), predict_proba(X[:4], f).shape
(dtype('float64'), (4, 2))
>>> out = np.empty((2, 4), proba_dtype(X))     # channel-major, written through a transposed view
>>> bool(np.array_equal(predict_proba(X[:4], f, out=out.T), predict_proba(X[:4], f)))
True
>>> bool(np.array_equal(predict(X[:4], f), f.classes[np.argmax(out, axis=0)]))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from . import cpu, gpu
from .forest import Forest


def on_gpu(features: Any) -> bool:
    """Whether ``features`` live on the GPU (and so go to the CUDA kernel)."""
    return backend.for_array(features).name == "gpu"


def proba_dtype(features: Any) -> np.dtype:
    """The dtype :func:`predict_proba` returns for ``features``: float32 on the GPU, float64 on the CPU."""
    return np.dtype(np.float32 if on_gpu(features) else np.float64)


def predict_proba(features: Any, forest: Forest, out: Any = None) -> Any:
    """Class probabilities ``(N, K)`` of feature rows ``(N, C)``: the mean of the trees' leaf distributions.

    numpy input runs the numba walk of the packed forest (float64 sums: equal to
    ``RandomForestClassifier.predict_proba``); cupy input runs the
    CUDA kernel of :mod:`gpuseg.classify.gpu` (float32). A strided view such as
    ``block.reshape(C, -1).T`` is fine on the GPU; the CPU copies it in batches.

    Parameters
    ----------
    features : (N, C) numpy or cupy array
    forest : Forest
    out : (N, K) array on the same device, optional
        Written in place, any strides (e.g. ``proba.T`` of a channel-major ``(K, N)`` array);
        of dtype :func:`proba_dtype` on the GPU (float32), any float dtype on the CPU.

    Returns
    -------
    (N, K) array of dtype :func:`proba_dtype`, or ``out``
    """
    if on_gpu(features):
        return gpu.predict_proba(features, forest, out=out)
    return cpu.predict_proba(features, forest, out=out)


def predict(features: Any, forest: Forest) -> Any:
    """Class values (argmax of :func:`predict_proba`; the first class wins exact ties, as in scikit-learn)."""
    proba = predict_proba(features, forest)
    xp = backend.for_array(proba).xp
    return xp.asarray(forest.classes)[xp.argmax(proba, axis=1)]
