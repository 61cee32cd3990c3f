"""Gaussian derivatives, tensors and closed-form eigenvalues against scipy / numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from gpuseg import eigen, filters
from gpuseg.eigen import symmetric_eigenvalues
from gpuseg.errors import ParameterError

RNG = np.random.default_rng(42)
VOLUME = RNG.random((20, 22, 24), dtype=np.float32) * 100
UPPER_3D = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]


def _eigvalsh_desc(matrices: np.ndarray) -> np.ndarray:
    """numpy's eigenvalues of (..., n, n), descending, moved to the first axis."""
    values = np.linalg.eigvalsh(matrices)[..., ::-1]
    return np.moveaxis(values, -1, 0)


def _components(matrices: np.ndarray, dtype) -> list[np.ndarray]:
    n = matrices.shape[-1]
    return [matrices[..., i, j].astype(dtype) for i in range(n) for j in range(i, n)]


def _random_symmetric(n: int, count: int, rng) -> np.ndarray:
    a = rng.normal(size=(count, n, n))
    return (a + np.swapaxes(a, -1, -2)) / 2


def _with_spectrum(eigenvalues: np.ndarray, rng) -> np.ndarray:
    """Random rotations of diagonal matrices with the given eigenvalues (count, n)."""
    count, n = eigenvalues.shape
    q, _ = np.linalg.qr(rng.normal(size=(count, n, n)))
    return np.einsum("cij,cj,ckj->cik", q, eigenvalues, q)


# --------------------------------------------------------------------------- eigenvalues


def _solve(components: list[np.ndarray], as_blocks: bool, out=None) -> np.ndarray:
    """symmetric_eigenvalues of 1-D components (the array form), or of them shaped as 3-D blocks (numba
    for 3×3 on the CPU), returned as (n, count) either way."""
    if not as_blocks:
        return symmetric_eigenvalues(components, out=out)
    count = components[0].size
    shape = (count // 100, 10, 10)
    return symmetric_eigenvalues([c.reshape(shape) for c in components]).reshape(-1, count)


@pytest.mark.parametrize("as_blocks", [False, True], ids=["arrays", "blocks"])
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 5e-5)])
def test_eigenvalues_random_match_eigvalsh(n, dtype, tol, as_blocks):
    matrices = _random_symmetric(n, 20000, np.random.default_rng(n))
    got = _solve(_components(matrices, dtype), as_blocks)
    assert got.dtype == dtype and got.shape == (n, 20000)
    ref = _eigvalsh_desc(matrices)
    scale = np.abs(ref).max(axis=0)
    assert np.max(np.abs(got - ref) / scale) < tol


@pytest.mark.parametrize("as_blocks", [False, True], ids=["arrays", "blocks"])
@pytest.mark.parametrize("n", [2, 3])
def test_eigenvalues_degenerate_match_eigvalsh(n, as_blocks):
    rng = np.random.default_rng(7)
    spectra = rng.normal(size=(3000, n))
    spectra[:1000, 1] = spectra[:1000, 0]  # a repeated pair
    spectra[1000:2000] = spectra[1000:2000, :1]  # all equal (a multiple of I, rotated)
    matrices = _with_spectrum(spectra, rng)
    matrices[2000:2100] = 0  # zero matrices
    matrices[2100:2200] = np.eye(n) * rng.normal(size=(100, 1, 1))  # exact multiples of I
    matrices[2200:2300] *= 1e-25  # tiny and huge entries: no under- or overflow
    matrices[2300:2400] *= 1e25
    for dtype, tol in ((np.float64, 1e-7), (np.float32, 1e-3)):  # repeated roots: ~sqrt(eps)
        got = _solve(_components(matrices, dtype), as_blocks)
        ref = _eigvalsh_desc(matrices)
        scale = np.maximum(np.abs(ref).max(axis=0), np.finfo(np.float64).tiny)
        assert np.all(np.isfinite(got))
        assert np.max(np.abs(got - ref) / scale) < tol, dtype
        assert np.all(got[2000:2100] == 0)


def test_eigenvalues_sorted_descending_and_out():
    matrices = _random_symmetric(3, 5000, np.random.default_rng(1))
    out = np.empty((3, 5000), np.float32)
    got = symmetric_eigenvalues(_components(matrices, np.float32), out=out)
    assert got is out
    assert np.all(got[0] >= got[1]) and np.all(got[1] >= got[2])


def test_fused_3x3_equals_the_array_form_on_strided_blocks_with_nan_and_inf():
    """The CPU's numba loop is the array form (the GPU's) fused: equal within the float32 array form's own
    error (the loop computes in float64), on views, with the same NaNs."""
    matrices = _random_symmetric(3, 24 * 26 * 28, np.random.default_rng(3)) * 50
    matrices[:5] = 0
    components = [c.reshape(24, 26, 28) for c in _components(matrices, np.float32)]
    components[0].flat[5], components[3].flat[6], components[1].flat[7] = np.nan, np.inf, -np.inf
    views = [c[2:-3, ::2, 1:] for c in components]  # strided, not contiguous
    fused = symmetric_eigenvalues(views)
    array_form = eigen._eigenvalues_3x3(*views)
    assert fused.dtype == np.float32 and fused.shape == (3, 19, 13, 27)
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(array_form))
    scale = np.abs(np.nan_to_num(array_form)).max(axis=0) + 1e-30
    assert np.nanmax(np.abs(fused - array_form) / scale) < 5e-5
    whole = symmetric_eigenvalues(components)
    assert np.all(whole[:, 0, 0, :5] == 0) and np.all(np.isnan(whole.reshape(3, -1)[:, 5:8]))


@pytest.mark.gpu
def test_fused_3x3_on_the_gpu_equals_the_cpu_loop_and_eigvalsh():
    """The CUDA kernel (compiled as C++ by the test double without a GPU) gives the numba loop's numbers."""
    import cupy

    matrices = _random_symmetric(3, 12 * 13 * 14, np.random.default_rng(4)) * 30
    matrices[:3] = 0
    matrices[3:6] = np.eye(3) * 2.5
    components = [c.reshape(12, 13, 14) for c in _components(matrices, np.float32)]
    components[2].flat[10] = np.nan
    cpu = symmetric_eigenvalues(components)
    views = [cupy.asarray(c)[:, 1:, ::2] for c in components]  # strided on the device too
    gpu = symmetric_eigenvalues(views)
    assert isinstance(gpu, cupy.ndarray) and gpu.dtype == np.float32 and gpu.shape == (3, 12, 12, 7)
    want = cpu[:, :, 1:, ::2]
    np.testing.assert_allclose(gpu.get(), want, rtol=1e-6, atol=1e-6 * np.nanmax(np.abs(want)))
    assert np.array_equal(np.isnan(gpu.get()), np.isnan(want))
    whole = symmetric_eigenvalues([cupy.asarray(c) for c in components]).get().reshape(3, -1)
    ref = _eigvalsh_desc(np.nan_to_num(matrices))
    ok = ~np.isnan(whole[0])
    assert np.max(np.abs(whole[:, ok] - ref[:, ok]) / (np.abs(ref[:, ok]).max(axis=0) + 1e-30)) < 2e-6
    assert np.all(whole[:, :3] == 0) and np.allclose(whole[:, 3:6], 2.5)
    out = cupy.empty((3, 12, 13, 14), np.float32)
    assert symmetric_eigenvalues([cupy.asarray(c) for c in components], out=out) is out


def test_eigenvalues_bad_input():
    with pytest.raises(ParameterError):
        symmetric_eigenvalues([np.zeros(3)] * 4)
    with pytest.raises(ParameterError):
        symmetric_eigenvalues([np.zeros(3)] * 6, out=np.zeros((2, 3)))


# --------------------------------------------------------------------------- scipy semantics


@pytest.mark.parametrize("axes", [(0, 1, 2), (1, 2)])
def test_derivatives_of_a_core_equal_the_whole_cropped(axes):
    """Passes on the core of the axes already filtered give the core's values to the bit."""
    core = (slice(3, 15), slice(5, 17), slice(2, 21))
    orders = [(0,) * len(axes), *[tuple(int(a == b) for b in range(len(axes))) for a in range(len(axes))],
              (2,) + (0,) * (len(axes) - 1), (1, 1) + (0,) * (len(axes) - 2)]
    options = dict(axes=axes, kernel="vigra", mode="mirror", truncate=2.0)
    whole = dict(filters.gaussian_derivatives(VOLUME, 1.6, orders, **options))
    part = dict(filters.gaussian_derivatives(VOLUME, 1.6, orders, core=core, **options))
    for order in orders:
        np.testing.assert_array_equal(part[order], whole[order][core])
        np.testing.assert_array_equal(filters.gaussian_derivative(VOLUME, 1.6, order, core=core, **options),
                                      whole[order][core])
    tensor = filters.structure_tensor(VOLUME, 0.8, 1.6, core=core, **options)
    for got, want in zip(tensor, filters.structure_tensor(VOLUME, 0.8, 1.6, **options)):
        np.testing.assert_array_equal(got, want[core])


@pytest.mark.parametrize("order", [(0, 0, 0), (1, 0, 0), (0, 2, 0), (1, 1, 0), (0, 1, 1), (2, 0, 0)])
@pytest.mark.parametrize("sigma", [0.7, 1.6, 3.5])
def test_gaussian_derivative_matches_scipy(order, sigma):
    got = filters.gaussian_derivative(VOLUME, sigma, order)
    ref = ndi.gaussian_filter(VOLUME.astype(np.float64), sigma, order=order, mode="reflect", truncate=4.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_gradient_magnitude_and_laplacian_match_scipy(sigma):
    v64 = VOLUME.astype(np.float64)
    np.testing.assert_allclose(filters.gradient_magnitude(VOLUME, sigma),
                               ndi.gaussian_gradient_magnitude(v64, sigma), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(filters.laplacian_of_gaussian(VOLUME, sigma),
                               ndi.gaussian_laplace(v64, sigma), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(filters.difference_of_gaussians(VOLUME, sigma, 0.66 * sigma),
                               ndi.gaussian_filter(v64, sigma) - ndi.gaussian_filter(v64, 0.66 * sigma),
                               rtol=1e-4, atol=1e-3)


def _hessian_reference(volume: np.ndarray, sigma: float) -> np.ndarray:
    v64 = volume.astype(np.float64)
    h = np.empty((*volume.shape, 3, 3))
    for i, j in UPPER_3D:
        order = [0, 0, 0]
        order[i] += 1
        order[j] += 1
        h[..., i, j] = h[..., j, i] = ndi.gaussian_filter(v64, sigma, order=order)
    return h


def test_hessian_eigenvalues_match_eigvalsh_of_scipy_hessian():
    sigma = 1.6
    got = filters.hessian_eigenvalues(VOLUME, sigma)
    ref = _eigvalsh_desc(_hessian_reference(VOLUME, sigma))
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_structure_tensor_eigenvalues_match_eigvalsh_of_scipy_tensor():
    inner, outer = 0.8, 1.6
    v64 = VOLUME.astype(np.float64)
    grad = [ndi.gaussian_filter(v64, inner, order=[int(a == k) for k in range(3)]) for a in range(3)]
    st = np.empty((*VOLUME.shape, 3, 3))
    for i, j in UPPER_3D:
        st[..., i, j] = st[..., j, i] = ndi.gaussian_filter(grad[i] * grad[j], outer)
    got = filters.structure_tensor_eigenvalues(VOLUME, inner, outer)
    ref = _eigvalsh_desc(st)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_two_d_axes_equal_per_slice_scipy():
    sigma = 1.3
    got = filters.hessian_eigenvalues(VOLUME, sigma, axes=(1, 2))
    assert got.shape == (2, *VOLUME.shape)
    for z in (0, 7, VOLUME.shape[0] - 1):
        s = VOLUME[z].astype(np.float64)
        h = np.empty((*s.shape, 2, 2))
        h[..., 0, 0] = ndi.gaussian_filter(s, sigma, order=(2, 0))
        h[..., 0, 1] = h[..., 1, 0] = ndi.gaussian_filter(s, sigma, order=(1, 1))
        h[..., 1, 1] = ndi.gaussian_filter(s, sigma, order=(0, 2))
        ref = _eigvalsh_desc(h)
        np.testing.assert_allclose(got[:, z], ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    grad = filters.gradient_magnitude(VOLUME, sigma, axes=(1, 2))
    ref = np.stack([ndi.gaussian_gradient_magnitude(s.astype(np.float64), sigma) for s in VOLUME])
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------- vigra semantics


@pytest.mark.parametrize("sigma,window", [(0.7, 2.0), (1.0, 2.0), (1.6, 3.5), (4.2, 3.5)])
def test_vigra_kernels_are_moment_normalised(sigma, window):
    radius = int(math.floor(window * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)

    def conv(f, k):
        return float(np.sum(f(-x) * k))

    for order in (0, 1, 2):
        k = filters.vigra_kernel1d(sigma, order, window)
        assert len(k) == 2 * radius + 1
        # convolution at 0 with x^n/n! gives the n-th derivative, 1; lower powers give 0
        assert conv(lambda t, n=order: t**n / math.factorial(n), k) == pytest.approx(1.0, abs=1e-12)
        for lower in range(order):
            assert conv(lambda t, n=lower: t**n, k) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ParameterError):
        filters.vigra_kernel1d(1.0, 3, 2.0)


def test_vigra_kernels_exact_on_quadratics():
    """With vigra kernels, derivatives of a quadratic volume are exact even with short windows."""
    zz, yy, xx = np.indices((15, 15, 15), dtype=np.float64) - 7
    poly = (1.5 * zz**2 - 0.5 * yy * xx + 2 * yy + 0.25 * xx**2).astype(np.float32)
    opts = dict(kernel="vigra", truncate=2.0, mode="mirror")
    inner = (slice(4, 11),) * 3
    gz = filters.gaussian_derivative(poly, 1.0, (1, 0, 0), **opts)
    np.testing.assert_allclose(gz[inner], (3 * zz)[inner], atol=1e-3)
    lap = filters.laplacian_of_gaussian(poly, 1.0, **opts)
    np.testing.assert_allclose(lap[inner], 3.5, atol=1e-3)
    h = filters.hessian_eigenvalues(poly, 1.0, **opts)
    ref = np.sort(np.linalg.eigvalsh(np.array([[3, 0, 0], [0, 0, -0.5], [0, -0.5, 0.5]])))[::-1]
    np.testing.assert_allclose(h[(slice(None), *inner)], np.broadcast_to(ref[:, None, None, None], (3, 7, 7, 7)),
                               atol=1e-3)


def test_unknown_kernel_and_orders():
    with pytest.raises(ParameterError):
        filters.gaussian_derivative(VOLUME, 1.0, (0, 0, 0), kernel="opencv")
    with pytest.raises(ParameterError):
        filters.gaussian_derivative(VOLUME, 1.0, (0, 0))


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_gpu_equals_cpu_filters_and_eigenvalues():
    import cupy

    gpu = cupy.asarray(VOLUME)
    for kernel, mode in (("scipy", "reflect"), ("vigra", "mirror")):
        for func, args in ((filters.hessian_eigenvalues, (1.6,)), (filters.structure_tensor_eigenvalues, (0.8, 1.6)),
                           (filters.gradient_magnitude, (2.0,)), (filters.laplacian_of_gaussian, (1.0,))):
            cpu = func(VOLUME, *args, kernel=kernel, mode=mode)
            got = func(gpu, *args, kernel=kernel, mode=mode)
            assert isinstance(got, cupy.ndarray)
            np.testing.assert_allclose(got.get(), cpu, rtol=1e-4, atol=1e-4 * np.abs(cpu).max())
    matrices = _random_symmetric(3, 10000, np.random.default_rng(3))
    comps = _components(matrices, np.float32)
    cpu = symmetric_eigenvalues(comps)
    got = symmetric_eigenvalues([cupy.asarray(c) for c in comps]).get()
    np.testing.assert_allclose(got, cpu, rtol=1e-5, atol=1e-5 * np.abs(cpu).max())
