"""``train`` and ``predict``: random-forest pixel classification from scribbles."""

from __future__ import annotations

import argparse

from .. import classify
from ..classify import defaults
from ..errors import ParameterError
from . import command_help, options


def register(sub) -> None:
    p = sub.add_parser("train", help=command_help("train"),
                       description="Computes features around labelled voxels only, trains scikit-learn's random forest, "
                                   "and writes a numbers-only model file. With several --labels, each adds to (and "
                                   "overrides) the ones before, and the change of the prediction between iterations "
                                   "is reported on a central crop.")
    p.add_argument("input", help="the tomogram")
    p.add_argument("--labels", action="append", metavar="LABELS",
                   help="annotation volume (0 = unlabelled) or ilastik project .ilp; repeat for iterations")
    p.add_argument("--model", required=True, help="model file to write (.npz)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--features", default="default", help="default, ilastik-full, or NAME:SCALE,... (default: default)")
    group.add_argument("--ilp", metavar="PROJECT", help="take the feature selection (and label names) from an ilastik project")
    p.add_argument("--2d", dest="twod", action="store_true", help="compute features slice by slice (y, x)")
    p.add_argument("--mode", choices=("ilastik", "plain"), default="ilastik", help="filter semantics (default: ilastik)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--trees", type=_tree_count, default=None, metavar="N",
                      help=f"grow and keep exactly N trees (default: grow {defaults.GROWN_TREES} and keep the fewest "
                           "whose labels agree with all of them on 99.9 %% of the central crop's unlabelled voxels)")
    size.add_argument("--full-forest", action="store_true",
                      help=f"keep every tree grown ({defaults.GROWN_TREES}), without sizing the forest by the data")
    p.add_argument("--seed", type=int, default=0, help="random seed of the forest (default: 0)")
    p.add_argument("--class-names", nargs="+", metavar="NAME", help="names of class values 1, 2, ...")
    p.add_argument("--compare-size", type=options.positive_int, default=defaults.COMPARE_SIZE,
                   help=f"edge of the central crop on which iterations are compared (default: {defaults.COMPARE_SIZE})")
    options.add_compute(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser("predict", help=command_help("predict"),
                       description="Labels (uint8 class values), and optionally per-class probabilities and uncertainty.")
    p.add_argument("input", help="the tomogram")
    p.add_argument("--model", required=True, help="model file written by `gpuseg train`")
    p.add_argument("output", help="labels: out.zarr[/array], out.tif, or a folder of slices")
    p.add_argument("--probabilities", metavar="OUT", help="also write per-class probabilities (K, z, y, x)")
    p.add_argument("--uncertainty", metavar="OUT", help="also write 1 - (p1 - p2), the margin uncertainty")
    p.add_argument("--prob-dtype", choices=defaults.PROB_DTYPES, default="uint8",
                   help="probabilities and uncertainty as uint8 0-255 (default) or float16")
    options.add_compute(p)
    p.set_defaults(handler=_predict)


def _train(args: argparse.Namespace) -> int:
    labels = list(args.labels or [])
    if not labels:
        if not args.ilp:
            raise ParameterError("give annotations with --labels (or an ilastik project with --ilp)")
        labels = [args.ilp]
    kw = options.compute_kwargs(args)
    result = classify.train(
        args.input, labels, features=args.features, twod=args.twod, mode=args.mode, ilp=args.ilp, trees=args.trees,
        full_forest=args.full_forest, random_state=args.seed, class_names=args.class_names, model=args.model, compare_size=args.compare_size,
        device=kw["device"], chunks=kw["chunks"], scheduler=kw["scheduler"], workers=kw["workers"],
        overwrite=kw["overwrite"], progress=kw["progress"],
    )
    forest = result.forest
    crop = "x".join(str(s.stop - s.start) for s in result.region)
    names = ", ".join(f"{c}={n}" for c, n in zip(forest.classes.tolist(), forest.class_names))
    print(f"{args.model}: {forest.n_trees} trees on {forest.n_features} feature channels, classes {names}")
    print(f"  {size_summary(forest.info.get('size', {}), forest.n_trees)}")
    for i, (label, samples) in enumerate(zip(labels, result.samples)):
        change = "" if i == 0 else f"; label changed on {result.changed[i - 1]:.2f} % of the central {crop} crop"
        print(f"  iteration {i + 1} (+ {label}): {samples} labelled voxels{change}")
    return 0


def _tree_count(text: str) -> int:
    """``--trees``: a whole number from 1 to the most trees gpuseg grows (argparse prints the error as one line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of trees") from None
    if not 1 <= value <= defaults.MAX_TREES:
        raise argparse.ArgumentTypeError(f"{value} trees: give a positive whole number, at most {defaults.MAX_TREES}")
    return value


def size_summary(size: dict, trees: int) -> str:
    """One line saying how the forest's size was chosen (the ``size`` record of its model file).

    Examples
    --------
    >>> size_summary({"method": "agreement", "trees": 87, "grown_trees": 100, "depth": 15, "grown_depth": 15,
    ...               "agreement": 0.99934, "region": "central 64³ crop", "visits": 540.0, "grown_visits": 620.0}, 87)
    'kept 87 of 100 trees (labels agree with all 100 on 99.93 % of the central 64³ crop; 13 % fewer node visits)'
    """
    method, grown = size.get("method"), size.get("grown_trees", trees)
    if method == "fixed":
        return f"{trees} trees, as --trees asked (not sized by the data)"
    if method == "full":
        return f"kept all {trees} trees grown" + (f" ({size['why']})" if size.get("why") else " (--full-forest)")
    if method != "agreement":
        return f"{trees} trees"
    cut = (f", cut at depth {size['depth']} of {size['grown_depth']}"
           if size.get("depth", 0) < size.get("grown_depth", 0) else "")
    saved = 1 - size["visits"] / size["grown_visits"] if size.get("grown_visits") else 0.0
    return (f"kept {trees} of {grown} trees{cut} (labels agree with all {grown} on {100 * size['agreement']:.2f} % "
            f"of the {size.get('region', 'central crop')}; {100 * saved:.0f} % fewer node visits)")


def _predict(args: argparse.Namespace) -> int:
    classify.predict(args.input, args.model, args.output, probabilities=args.probabilities,
                     prob_dtype=args.prob_dtype, uncertainty=args.uncertainty, **options.compute_kwargs(args))
    print(args.output)
    return 0
