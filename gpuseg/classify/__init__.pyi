from .defaults import COMPARE_SIZE, PROB_DTYPES
from .forest import Forest
from .model_file import load, save
from .pixel import (
    PREDICT,
    Prediction,
    TrainResult,
    check_fits,
    feature_spec,
    predict,
    spec_of,
    train,
)

__all__ = [
    "COMPARE_SIZE",
    "PREDICT",
    "PROB_DTYPES",
    "Forest",
    "Prediction",
    "TrainResult",
    "check_fits",
    "feature_spec",
    "load",
    "predict",
    "save",
    "spec_of",
    "train",
]
