"""Feature stacks: specification, each feature against a direct reference, chunking, 2-D, paths, CLI, GPU."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import features, io
from gpuseg.engine import process
from gpuseg.errors import InputError, ParameterError
from gpuseg.features import FeatureSpec, compute, compute_block, from_selection_matrix, parse_features
from tests.conftest import run_cli

RNG = np.random.default_rng(5)
VOLUME = (RNG.random((24, 26, 28)) * 200).astype(np.float32)
ILASTIK_ROWS = ["GaussianSmoothing", "LaplacianOfGaussian", "GaussianGradientMagnitude", "DifferenceOfGaussians",
                "StructureTensorEigenvalues", "HessianOfGaussianEigenvalues"]


# --------------------------------------------------------------------------- specification


def test_presets():
    default = parse_features("default")
    assert default.channels >= 20 and default.mode == "ilastik" and not default.twod
    full = parse_features("ilastik-full")
    assert full.channels == 61 and len(full.names) == 61 and len(set(full.names)) == 61
    # ilastik's channel order: feature rows outer, scales inner; 0.3 for smoothing only
    assert full.names[:8] == [f"gaussian_smoothing_{s}" for s in ("0.3", "0.7", "1", "1.6", "3.5", "5", "10")] + [
        "laplacian_of_gaussian_0.7"]
    assert full.names[-3:] == ["hessian_eigenvalues_10_0", "hessian_eigenvalues_10_1", "hessian_eigenvalues_10_2"]
    assert parse_features("ilastik-full", twod=True).channels == 7 + 6 * 3 + 6 * 2 * 2


def test_explicit_list_and_names():
    spec = parse_features(" gaussian:1.0, laplacian:1.6 ,hessian:3.5", mode="plain")
    assert spec.items == (("gaussian_smoothing", 1.0), ("laplacian_of_gaussian", 1.6), ("hessian_eigenvalues", 3.5))
    assert spec.names == ["gaussian_smoothing_1", "laplacian_of_gaussian_1.6", "hessian_eigenvalues_3.5_0",
                          "hessian_eigenvalues_3.5_1", "hessian_eigenvalues_3.5_2"]
    assert parse_features("HessianOfGaussianEigenvalues:1.6").names[0] == "hessian_eigenvalues_1.6_0"


@pytest.mark.parametrize("text", ["foo:1", "gaussian", "gaussian:x", "gaussian:-1", "gaussian:1,gaussian:1", "",
                                  "dog:0.3", "st:0.5", "gaussian:inf"])
def test_bad_specifications(text):
    with pytest.raises(ParameterError):
        parse_features(text)


def test_small_scales_allowed_where_ilastik_computes_them():
    assert parse_features("dog:0.3", mode="plain").channels == 1
    assert parse_features("st:0.5", twod=True).channels == 2
    with pytest.raises(ParameterError):
        FeatureSpec((("gaussian_smoothing", 1.0),), mode="fancy")


def test_dict_round_trip_through_json():
    for spec in (parse_features("default"), parse_features("ilastik-full", mode="plain", twod=True)):
        again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec and again.names == spec.names and again.halo == spec.halo
    for bad in ({"items": [["gaussian_smoothing", 1.0]]}, {"items": [["nope", 1]], "mode": "plain", "twod": False},
                {"items": 3, "mode": "plain", "twod": False}):
        with pytest.raises(InputError):
            FeatureSpec.from_dict(bad)


def test_selection_matrix_import():
    scales = [0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0]
    full = np.ones((6, 7), bool)
    full[1:, 0] = False
    assert from_selection_matrix(full, scales) == parse_features("ilastik-full")
    # rows in the project's own order, ids as stored in HDF5 (bytes), 2-D flags
    matrix = np.zeros((6, 7), bool)
    matrix[0, 2] = matrix[1, 4] = True  # rows reversed below: Hessian at 1.0, structure tensor at 3.5
    spec = from_selection_matrix(matrix, scales, feature_ids=[i.encode() for i in ILASTIK_ROWS[::-1]],
                                 compute_in_2d=[True] * 7)
    assert spec.items == (("structure_tensor_eigenvalues", 3.5), ("hessian_eigenvalues", 1.0)) and spec.twod
    with pytest.raises(InputError):
        from_selection_matrix(np.ones((6, 6), bool), scales)
    with pytest.raises(InputError):
        from_selection_matrix(full, scales, compute_in_2d=[True, False, True, True, True, True, True])
    with pytest.raises(InputError):
        from_selection_matrix(full, scales, compute_in_2d=[False] * 6)
    tiny_dog = np.zeros((6, 7), bool)
    tiny_dog[3, 0] = True  # DoG at 0.3: ilastik itself would fall back to 2-D
    with pytest.raises(InputError):
        from_selection_matrix(tiny_dog, scales)
    unknown = np.zeros((7, 7), bool)
    unknown[6, 1] = True
    with pytest.raises(InputError):
        from_selection_matrix(unknown, scales, feature_ids=ILASTIK_ROWS + ["FancyFeature"])


def test_halo_values():
    r = lambda s, w: int(w * s + 0.5)  # scipy's and vigra's window rule
    assert parse_features("hessian:10", mode="plain").halo == (r(10, 4),) * 3
    assert parse_features("st:10", mode="plain").halo == (r(5, 4) + r(10, 4),) * 3
    # ilastik: pre-smoothing sqrt(s^2 - 1) with window 3.5, then the feature at 1.0 with window 2
    assert parse_features("hessian:10").halo == (r(math.sqrt(99), 3.5) + r(1, 2),) * 3
    assert parse_features("st:10").halo == (r(math.sqrt(99), 3.5) + r(0.5, 2) + r(1, 2),) * 3
    assert parse_features("gaussian:0.7").halo == (r(0.7, 3.5) + r(0.7, 2),) * 3
    r_35 = r(math.sqrt(3.5**2 - 1), 3.5) + r(1, 2)
    assert parse_features("hessian:3.5", twod=True).halo == (0, r_35, r_35)


# --------------------------------------------------------------------------- references


def _eig_desc(m: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.linalg.eigvalsh(m)[..., ::-1], -1, 0)


def _tensor(parts: dict, n: int) -> np.ndarray:
    first = next(iter(parts.values()))
    m = np.empty((*first.shape, n, n))
    for (i, j), value in parts.items():
        m[..., i, j] = m[..., j, i] = value
    return m


def plain_reference(volume: np.ndarray, name: str, s: float) -> np.ndarray:
    """The plain-mode feature from scipy.ndimage.gaussian_filter and numpy's eigvalsh, in float64."""
    v = volume.astype(np.float64)
    g = lambda x, sigma, order=0: ndi.gaussian_filter(x, sigma, order=order, mode="reflect", truncate=4.0)
    unit = lambda *axes: [sum(a == k for a in axes) for k in range(3)]
    if name == "gaussian_smoothing":
        return g(v, s)[None]
    if name == "laplacian_of_gaussian":
        return sum(g(v, s, unit(a, a)) for a in range(3))[None]
    if name == "gradient_magnitude":
        return np.sqrt(sum(g(v, s, unit(a)) ** 2 for a in range(3)))[None]
    if name == "difference_of_gaussians":
        return (g(v, s) - g(v, 0.66 * s))[None]
    if name == "hessian_eigenvalues":
        return _eig_desc(_tensor({(i, j): g(v, s, unit(i, j)) for i in range(3) for j in range(i, 3)}, 3))
    grad = [g(v, 0.5 * s, unit(a)) for a in range(3)]
    return _eig_desc(_tensor({(i, j): g(grad[i] * grad[j], s) for i in range(3) for j in range(i, 3)}, 3))


def fastfilters_kernel(sigma: float, order: int, window: float) -> np.ndarray:
    """The FIR kernel of fastfilters' fir_kernel.c (as ilastik uses it), rebuilt step by step from that source.

    Half kernel c[0..len], len = floor(window * sigma + 0.5); second derivative made zero-mean;
    scaled so the convolution with x^n/n! is 1; antisymmetric kernels negated for its (right - left) sums.
    Returned as a full correlation kernel over offsets -len..len.
    """
    length = math.floor(window * sigma + 0.5)
    norm = -1 / (math.sqrt(2 * math.pi) * sigma**3) if order else 1 / (math.sqrt(2 * math.pi) * sigma)
    c = []
    for x in range(length + 1):
        gx = norm * math.exp(-0.5 * x * x / sigma**2)
        c.append([gx, x * gx, (1 - (x / sigma) ** 2) * gx][order])
    if order == 2:
        dc = (c[0] + 2 * sum(c[1:])) / (2 * length + 1)
        c = [v - dc for v in c]
    if order == 0:
        total = c[0] + 2 * sum(c[1:])
    else:
        sign = 1 if order == 2 else -1
        total = sum(c[x] * (-x) ** order / math.factorial(order) + sign * c[x] * x**order / math.factorial(order)
                    for x in range(1, length + 1))
    c = [v / total for v in c]
    if order == 1:  # fastfilters: out[i] = c0*in[i] + sum_k c'[k] * (in[i+k] - in[i-k]), c' = -c
        return np.array([c[k] for k in range(length, 0, -1)] + [0.0] + [-c[k] for k in range(1, length + 1)])
    return np.array([c[abs(k)] for k in range(-length, length + 1)])


def _ff_filter(v: np.ndarray, sigma: float, orders, window: float, axes=(0, 1, 2)) -> np.ndarray:
    """Separable correlation with fastfilters' kernels and mirror borders, by explicit shifted sums."""
    for axis, order in zip(axes, orders):
        k = fastfilters_kernel(sigma, order, window)
        r = len(k) // 2
        pad = [(0, 0)] * v.ndim
        pad[axis] = (r, r)
        p = np.pad(v, pad, mode="reflect")  # numpy's reflect is (d c b | a b c d): fastfilters' mirror
        n = v.shape[axis]
        v = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(len(k)))
    return v


def ilastik_reference(volume: np.ndarray, name: str, s: float) -> np.ndarray:
    """What ilastik computes (OpPixelFeaturesPresmoothed + fastfilters), rebuilt from their source."""
    v = volume.astype(np.float64)
    presmooth = math.sqrt(s * s - 1) if s > 1 else s
    sigma = min(s, 1.0)
    v = _ff_filter(v, presmooth, (0, 0, 0), 3.5)
    f = lambda x, sg, orders: _ff_filter(x, sg, orders, 2.0)
    unit = lambda *axes: [sum(a == k for a in axes) for k in range(3)]
    if name == "gaussian_smoothing":
        return f(v, sigma, (0, 0, 0))[None]
    if name == "laplacian_of_gaussian":
        return sum(f(v, sigma, unit(a, a)) for a in range(3))[None]
    if name == "gradient_magnitude":
        return np.sqrt(sum(f(v, sigma, unit(a)) ** 2 for a in range(3)))[None]
    if name == "difference_of_gaussians":
        return (f(v, sigma, (0, 0, 0)) - f(v, 0.66 * sigma, (0, 0, 0)))[None]
    if name == "hessian_eigenvalues":
        return _eig_desc(_tensor({(i, j): f(v, sigma, unit(i, j)) for i in range(3) for j in range(i, 3)}, 3))
    # fastfilters' st3d(image, innerScale, outerScale) smooths at innerScale and differentiates at outerScale
    grad = [f(v, 0.5 * sigma, unit(a)) for a in range(3)]
    st = {(i, j): f(grad[i] * grad[j], sigma, (0, 0, 0)) for i in range(3) for j in range(i, 3)}
    return _eig_desc(_tensor(st, 3))


def _close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    scale = max(np.abs(ref).max(), 1e-6)
    np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-4 * scale, err_msg=what)


@pytest.mark.parametrize("name", features.FEATURE_NAMES)
@pytest.mark.parametrize("scale", [0.7, 1.6, 5.0])
def test_plain_features_equal_scipy_reference(name, scale):
    spec = FeatureSpec(((name, scale),), mode="plain")
    got = compute(VOLUME, spec, device="cpu")
    assert got.shape == (spec.channels, *VOLUME.shape) and got.dtype == np.float32
    _close(got, plain_reference(VOLUME, name, scale), f"{name} {scale}")


@pytest.mark.parametrize("name", features.FEATURE_NAMES)
@pytest.mark.parametrize("scale", [0.7, 1.0, 3.5])
def test_ilastik_features_equal_rebuilt_ilastik(name, scale):
    spec = FeatureSpec(((name, scale),), mode="ilastik")
    got = compute(VOLUME, spec, device="cpu")
    _close(got, ilastik_reference(VOLUME, name, scale), f"{name} {scale}")


def test_ilastik_large_scales_approximate_plain_smoothing():
    """Pre-smoothing with sqrt(s² - 1), then smoothing at 1: about a Gaussian of s, so ilastik ≈ plain for s > 1."""
    blobs = ndi.gaussian_filter(VOLUME, 2.0)
    blobs = (blobs - blobs.min()) / (blobs.max() - blobs.min()) * 100
    inner = (slice(None), slice(8, -8), slice(8, -8), slice(8, -8))
    spec_i, spec_p = (FeatureSpec((("gaussian_smoothing", 3.5),), mode=m) for m in ("ilastik", "plain"))
    got_i, got_p = compute(blobs, spec_i, device="cpu")[inner], compute(blobs, spec_p, device="cpu")[inner]
    assert np.abs(got_i - got_p).max() < 0.03 * (got_p.max() - got_p.min())
    # but not for s <= 1: there ilastik smooths twice with s (an effective scale of s * sqrt(2))
    spec_i, spec_p = (FeatureSpec((("gaussian_smoothing", 1.0),), mode=m) for m in ("ilastik", "plain"))
    twice = compute(blobs, FeatureSpec((("gaussian_smoothing", math.sqrt(2)),), mode="plain"), device="cpu")[inner]
    got_i, got_p = compute(blobs, spec_i, device="cpu")[inner], compute(blobs, spec_p, device="cpu")[inner]
    assert np.abs(got_i - twice).max() < 0.5 * np.abs(got_i - got_p).max()


def test_multi_feature_stack_is_the_concatenation():
    spec = parse_features("default", mode="ilastik")
    stack = compute_block(VOLUME, spec)
    at = 0
    for name, scale in spec.items:
        one = compute_block(VOLUME, FeatureSpec(((name, scale),), mode=spec.mode))
        np.testing.assert_array_equal(stack[at : at + len(one)], one)
        at += len(one)
    assert at == spec.channels


# --------------------------------------------------------------------------- blocks, 2-D, lazy


@pytest.mark.parametrize("mode", ["ilastik", "plain"])
@pytest.mark.parametrize("chunks", [7, (5, 11, 16), (24, 9, 28), (16, 20, 13)])
def test_chunked_equals_whole(mode, chunks):
    """Chunks smaller than the halo (19-20 voxels), and shapes (24, 26, 28) not divisible by the chunks."""
    spec = parse_features("default", mode=mode)
    whole = compute(VOLUME, spec, device="cpu")
    np.testing.assert_array_equal(compute(VOLUME, spec, device="cpu", chunks=chunks), whole)


def test_halo_is_exact_not_just_enough():
    """One voxel less of halo changes the result: the declared halo is the kernels' true reach."""
    for text in ("hessian:1.6", "st:3.5", "gaussian:0.7"):
        for mode in ("ilastik", "plain"):
            spec = parse_features(text, mode=mode)
            whole = compute(VOLUME, spec, device="cpu")
            short = tuple(h - 1 for h in spec.halo)
            short_op = dataclasses.replace(features.FEATURES, halo=short)
            chunked = process(short_op, {"spec": spec}, VOLUME, chunks=8, device="cpu")
            assert not np.array_equal(chunked, whole), (text, mode)


@pytest.mark.parametrize("mode", ["ilastik", "plain"])
def test_two_d_equals_per_slice(mode):
    spec = parse_features("gaussian:1.6,gradient:1,dog:1.6,laplacian:3.5,st:1.6,hessian:1", mode=mode, twod=True)
    assert spec.halo[0] == 0
    stack = compute(VOLUME, spec, device="cpu")
    for z in (0, 11, VOLUME.shape[0] - 1):
        # the same features of the one slice, computed as a 1-voxel-thick volume (no z neighbours)
        alone = compute(VOLUME[z : z + 1], spec, device="cpu")
        np.testing.assert_array_equal(stack[:, z : z + 1], alone)
    # and against scipy's own 2-D filters (plain) for the Hessian eigenvalues
    if mode == "plain":
        s = VOLUME[11].astype(np.float64)
        h = _tensor({(0, 0): ndi.gaussian_filter(s, 1, order=(2, 0)), (0, 1): ndi.gaussian_filter(s, 1, order=(1, 1)),
                     (1, 1): ndi.gaussian_filter(s, 1, order=(0, 2))}, 2)
        _close(stack[-2:, 11], _eig_desc(h), "2-D Hessian")
    np.testing.assert_array_equal(compute(VOLUME, spec, device="cpu", chunks=(1, 9, 10)), stack)


def test_dask_input_gives_lazy_equal_output():
    import dask.array as da

    spec = parse_features("gaussian:1,hessian:1.6")
    lazy = compute(da.from_array(VOLUME, chunks=(10, 13, 28)), spec, device="cpu")
    assert isinstance(lazy, da.Array) and lazy.shape == (spec.channels, *VOLUME.shape)
    np.testing.assert_array_equal(lazy.compute(), compute(VOLUME, spec, device="cpu"))


def test_integer_input_is_computed_as_float32():
    ints = VOLUME.astype(np.uint16)
    spec = parse_features("gaussian:1,hessian:1")
    floats = compute(ints.astype(np.float32), spec, device="cpu")
    np.testing.assert_array_equal(compute(ints, spec, device="cpu"), floats)


# --------------------------------------------------------------------------- paths and CLI


def test_path_in_zarr_out(tmp_path):
    src = f"{tmp_path}/v.zarr/raw"
    io.create_array(src, VOLUME.shape, np.float32, (10, 10, 10), {"voxel_size_nm": [400.0] * 3})[:] = VOLUME
    spec = parse_features("default")
    out = compute(src, spec, f"{tmp_path}/f.zarr", device="cpu", chunks=(9, 13, 11))
    arr = io.open_array(out)
    assert arr.shape == (spec.channels, *VOLUME.shape) and arr.chunks == (spec.channels, 9, 13, 11)
    np.testing.assert_array_equal(arr[:], compute(VOLUME, spec, device="cpu"))
    assert arr.attrs["channel_names"] == spec.names
    assert FeatureSpec.from_dict(arr.attrs["features"]) == spec
    assert arr.attrs["voxel_size_nm"] == [400.0] * 3


def test_cli_features(tmp_path):
    import tifffile

    tif = tmp_path / "v.tif"
    tifffile.imwrite(tif, VOLUME.astype(np.uint16))
    out = tmp_path / "f.zarr"
    assert run_cli("features", tif, out, "--features", "gaussian:1,st:1.6", "--2d", "--mode", "plain",
                   "--chunks", "8", "--device", "cpu", "-q") == 0
    spec = parse_features("gaussian:1,st:1.6", mode="plain", twod=True)
    np.testing.assert_array_equal(io.open_array(out)[:], compute(VOLUME.astype(np.uint16), spec, device="cpu"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert run_cli("features", tif, out, "-q") == 2  # exists: untouched
    assert run_cli("features", tif, tmp_path / "g.tif", "-q") == 2  # 4-D output must be zarr
    assert run_cli("features", tif, tmp_path / "g.zarr", "--features", "sobel:1", "-q") == 2
    assert run_cli("features", tmp_path / "missing.tif", tmp_path / "h.zarr", "-q") == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    np.testing.assert_array_equal(io.open_array(out)[:], compute(VOLUME.astype(np.uint16), spec, device="cpu"))


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["default", "ilastik-full"])
@pytest.mark.parametrize("mode", ["ilastik", "plain"])
@pytest.mark.parametrize("twod", [False, True])
def test_gpu_equals_cpu(preset, mode, twod):
    import cupy

    spec = parse_features(preset, mode=mode, twod=twod)
    cpu = compute_block(VOLUME, spec)
    gpu = compute_block(cupy.asarray(VOLUME), spec)
    assert isinstance(gpu, cupy.ndarray)
    _close_per_channel(gpu.get(), cpu)


@pytest.mark.gpu
def test_gpu_chunked_path(tmp_path):
    src = f"{tmp_path}/v.zarr/raw"
    io.create_array(src, VOLUME.shape, np.float32, (10, 10, 10))[:] = VOLUME
    spec = parse_features("default")
    out = compute(src, spec, f"{tmp_path}/f.zarr", device="gpu", chunks=7)
    cpu = compute(VOLUME, spec, device="cpu")
    _close_per_channel(io.open_array(out)[:], cpu)


def _close_per_channel(got, want, rel=1e-5):
    """Every channel within ``rel`` of its own largest magnitude: the GPU's filters sum in float64 as
    scipy's do (backend.scipy_precision) and both devices solve the 3×3 eigenvalues in float64
    (:mod:`gpuseg.eigen_cpu`, :mod:`gpuseg.eigen_gpu`), so only last-bit differences of transcendental
    functions remain on a real GPU (and of float32 rounding of the same float64 values on the double)."""
    scale = np.maximum(np.abs(want).max(axis=(1, 2, 3), keepdims=True), np.finfo(np.float32).tiny)
    worst = float((np.abs(got.astype(np.float64) - want) / scale).max())
    assert worst <= rel, f"largest difference {worst:.2e} of a channel's scale"
