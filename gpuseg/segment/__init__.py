"""Segmentation methods: thresholds, seeded watershed, speckle removal; pixel classification is :mod:`gpuseg.classify`.

* :mod:`.threshold` — manual thresholds (the study's S1/S2/S3), Otsu and multi-Otsu from a
  one-pass chunked histogram (equal to scikit-image on the whole array).
* :mod:`.watershed` — two-threshold seeded watershed (gWS, cWS), blockwise with a halo.
* :mod:`.speckle` — removal of small connected components, exact across chunk borders.
* Scribbles and random-forest pixel classification: their own package, :mod:`gpuseg.classify`.

Outputs are uint8: 0 = not assigned; two phases 1 = active, 2 = non-active; three phases
1 = active, 2 = carbon-binder, 3 = pore.
"""
