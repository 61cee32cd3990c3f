"""CPU forest predictors side by side: scikit-learn, gpuseg's CPU predictor, tl2cgen's compiled C, own compiled kernels.

    python benchmarks/cpu_predictors.py [--rows 1000000] [--trees 100] [--small-trees 20] [--threads 2] [--quick]

One forest, built the way ``gpuseg train`` builds it: scikit-learn's ``RandomForestClassifier`` (100 fully
grown trees, ``random_state`` 0, scikit-learn's defaults otherwise) on gpuseg's ``default`` features (20
channels) of an ``nmc-1`` phantom (seed ``--seed`` + 1), labelled from the phantom's truth at
``--train-samples`` random voxels (250 000 give the ~14 000-node trees of the issue's 1.4 M-node forest).
The rows to predict are ``--rows`` feature rows of another phantom (seed ``--seed``), never seen in
training. Every candidate
predicts the same rows with ``--threads`` threads, on the full forest and on its first ``--small-trees``
trees (the data-sized forest):

* **scikit-learn** ``predict_proba`` (``n_jobs`` = threads): the reference, ratio 1;
* **gpuseg** ``classify.cpu.predict_proba``: the adopted kernel (:mod:`gpuseg.classify.walk`): the own
  numba kernel below on the 8-byte packed layout of :mod:`gpuseg.classify.layout` (leaves are NaN
  self-loops carrying their class, so a step is ``node + offset + (x > threshold)``); one call is one
  thread, so it also runs as the engine does, one call per row block on ``threads`` threads;
* **tl2cgen**: the forest imported with ``treelite.sklearn.import_model``, compiled to a shared library by
  ``tl2cgen.export_lib`` (one tree per translation unit, ``threads`` compiler processes, ``--tl2cgen-opt``)
  and run with ``nthread`` = threads. Compiling the nested ``if``s of a deep forest is slow: the first tree
  alone is compiled first (a probe, also timed beside scikit-learn on that tree), and a forest is compiled
  only if the probe's rate (seconds per node and core) says it fits ``--compile-budget``. The estimate
  assumes the compile processes run in parallel undisturbed; on a loaded machine the compile takes longer;
* **own C kernel** (compiled here with the system's ``cc -O3 -march=native -fopenmp``, called through
  ctypes, which releases the GIL): 16-byte nodes ``(feature int32, threshold float32, left int32, leaf
  int32)``, each tree renumbered breadth first so its top levels sit together and the two children of a
  node are adjacent (``right = left + 1``: next node = ``left + !(x <= threshold)``, branch-free); a leaf
  points to itself with threshold +inf, so ``B`` interleaved rows walk a tree in lock step until none
  moves; row blocks of ``--block`` rows go through one tree at a time (the tree, ~220 kB, stays in L2
  while it meets the whole block) and the blocks are shared among the threads by OpenMP; sums in float64,
  divided by the tree count at the end, as scikit-learn does. Block size matters: on the 100-tree forest
  (22 MB of nodes, more than stays cached between one block's visits) blocks of 2 048 rows ran 0.85×,
  16 384 1.3–1.4×, 65 536 1.6–1.8× and 131 072–500 000 1.8–1.9× scikit-learn in development;
* **own numba kernel**: the same algorithm and layout through numba (``prange`` over row blocks; the ``B``
  slots unrolled into scalars, as gcc unrolls the C loop, and unsigned indices, which spare numba's
  wrap-around test): the variant that installs from PyPI wheels alone.

A variant of the C kernel in which each slot takes the next row as soon as its own reaches a leaf (no lock
step, a branch per visit instead) ran 0.6–0.7× the lock-step kernel in development and is not kept.
Candidates are timed round robin, ``--repeat`` rounds, the best time kept, so a changing load from other
jobs hits them alike.

Thresholds are float32 rounded down (gpuseg's model format), which is exact for float32 features. A
candidate counts only if its largest absolute difference from scikit-learn's probabilities is ≤ 1e-6.
Optional packages missing from the environment give a row saying so; in a throwaway virtual environment:
``pip install -e . treelite tl2cgen numba``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import ctypes
import datetime
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _util import machine, table

from gpuseg import classify, phantom
from gpuseg import features as feat
from gpuseg.classify import cpu, layout
from gpuseg.classify import forest as fo

TOLERANCE = 1e-6
NODE = np.dtype([("feature", "<i4"), ("threshold", "<f4"), ("left", "<i4"), ("leaf", "<i4")])  # 16 bytes

C_SOURCE = r"""
#include <stdint.h>
#include <string.h>

typedef struct { int32_t feature; float threshold; int32_t left; int32_t leaf; } node_t;

#ifndef B
#define B 8
#endif

/* Probabilities (n, K) float64 of float32 rows X (n, C), C-contiguous. Leaves point to themselves with
   threshold +inf; the children of a node are left and left + 1. */
void predict(const node_t *nodes, const int64_t *roots, int n_trees, const double *leafval, int K,
             const float *X, int64_t n, int C, double *out, int64_t block, int nthreads)
{
    int64_t nblocks = (n + block - 1) / block;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t r0 = b * block, r1 = r0 + block < n ? r0 + block : n;
        double *acc = out + r0 * K;
        memset(acc, 0, (size_t)(r1 - r0) * K * sizeof(double));
        for (int t = 0; t < n_trees; t++) {
            int32_t root = (int32_t)roots[t];
            for (int64_t r = r0; r < r1; r += B) {
                int m = r1 - r < B ? (int)(r1 - r) : B;
                int32_t idx[B];
                const float *x[B];
                for (int j = 0; j < B; j++) {
                    idx[j] = root;
                    x[j] = X + (r + (j < m ? j : m - 1)) * C;
                }
                int moved;
                do {
                    moved = 0;
                    for (int j = 0; j < B; j++) {
                        node_t nd = nodes[idx[j]];
                        int32_t next = nd.left + !(x[j][nd.feature] <= nd.threshold);
                        moved |= next != idx[j];
                        idx[j] = next;
                    }
                } while (moved);
                for (int j = 0; j < m; j++) {
                    const double *v = leafval + (int64_t)nodes[idx[j]].leaf * K;
                    double *a = acc + (r - r0 + j) * K;
                    for (int k = 0; k < K; k++) a[k] += v[k];
                }
            }
        }
        for (int64_t i = 0; i < (r1 - r0) * K; i++) acc[i] /= n_trees;
    }
}
"""


# --------------------------------------------------------------------------- the forest and the rows


def phantom_rows(edge: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``default`` features (N, 20) float32 and truth labels (N,) of an ``nmc-1`` phantom of ``edge``³."""
    raw, truth = phantom.make("nmc-1", (edge,) * 3, seed=seed)
    spec = classify.feature_spec("default")
    X = feat.compute_block(raw.astype(np.float32), spec).reshape(spec.channels, -1).T
    return np.ascontiguousarray(X, dtype=np.float32), truth.ravel()


def first_trees(clf: Any, k: int) -> Any:
    """The scikit-learn forest of the first ``k`` trees (what ``Forest.first(k)`` holds)."""
    small = copy.copy(clf)
    small.estimators_ = clf.estimators_[:k]
    small.n_estimators = k
    return small


# --------------------------------------------------------------------------- packed layout of the own kernels


@dataclass
class Packed:
    nodes: np.ndarray  # NODE records, trees one after another, each breadth first
    roots: np.ndarray  # int64, the root of each tree
    leafval: np.ndarray  # (leaves, K) float64
    n_classes: int


def pack(forest: fo.Forest) -> Packed:
    """16-byte nodes, each tree breadth first (children adjacent), leaves self-loops with threshold +inf."""
    chunks, roots, values = [], [], []
    base, leaf_base = 0, 0
    for t in range(forest.n_trees):
        lo = int(forest.tree_start[t])
        order, level = [], np.array([lo], np.int64)
        while len(level):  # breadth first: the children of a level, pairwise, make the next level
            order.append(level)
            inner = level[forest.feature[level] != fo.LEAF]
            level = np.stack([forest.left[inner], forest.right[inner]], axis=1).ravel().astype(np.int64)
        old = np.concatenate(order)
        new_of = np.empty(int(forest.tree_start[t + 1]) - lo, np.int64)
        new_of[old - lo] = np.arange(len(old)) + base
        nodes = np.zeros(len(old), NODE)
        leaf = forest.feature[old] == fo.LEAF
        nodes["feature"] = np.where(leaf, 0, forest.feature[old])
        nodes["threshold"] = np.where(leaf, np.float32(np.inf), forest.threshold[old])
        nodes["left"] = np.where(leaf, np.arange(len(old)) + base, new_of[np.maximum(forest.left[old], lo) - lo])
        right = new_of[np.maximum(forest.right[old], lo) - lo]
        assert np.all((right == nodes["left"] + 1) | leaf), "children must be adjacent"
        nodes["leaf"] = np.where(leaf, np.cumsum(leaf) - 1 + leaf_base, -1)
        values.append(forest.value[old[leaf]])
        chunks.append(nodes)
        roots.append(base)
        base += len(old)
        leaf_base += int(leaf.sum())
    return Packed(np.concatenate(chunks), np.asarray(roots, np.int64),
                  np.ascontiguousarray(np.concatenate(values), np.float64), forest.n_classes)


def build_c(workdir: Path, interleave: int) -> Callable[..., None]:
    """Compile :data:`C_SOURCE` with the system's C compiler and return the ctypes function."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) on PATH")
    src, lib = workdir / "kernel.c", workdir / f"kernel_b{interleave}.so"
    src.write_text(C_SOURCE)
    subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-DB={interleave}", "-o", str(lib),
                    str(src)], check=True, capture_output=True, text=True)
    fn = ctypes.CDLL(str(lib)).predict
    fn.restype = None
    p = ctypes.c_void_p
    fn.argtypes = [p, p, ctypes.c_int, p, ctypes.c_int, p, ctypes.c_int64, ctypes.c_int, p, ctypes.c_int64,
                   ctypes.c_int]
    return fn


def c_predict(fn: Callable[..., None], packed: Packed, X: np.ndarray, block: int, threads: int) -> np.ndarray:
    X = np.ascontiguousarray(X, np.float32)
    out = np.empty((len(X), packed.n_classes), np.float64)
    fn(packed.nodes.ctypes.data, packed.roots.ctypes.data, len(packed.roots), packed.leafval.ctypes.data,
       packed.n_classes, X.ctypes.data, len(X), X.shape[1], out.ctypes.data, block, threads)
    return out


NUMBA_TEMPLATE = """
def kernel(ints, floats, roots, leafval, X, C, out, K, block):
    n = len(out) // K
    T = len(roots)
    nblocks = (n + block - 1) // block
    for b in {loop}(nblocks):
        r0 = b * block
        r1 = min(n, r0 + block)
        acc = np.zeros((r1 - r0) * K)
        for t in range(T):
            root = roots[t]
            for r in range(r0, r1, {B}):
                m = min({B}, r1 - r)
{init}
                moved = True
                while moved:
{step}
                    moved = {moved}
{assign}
{accumulate}
        for i in range((r1 - r0) * K):
            out[r0 * K + i] = acc[i] / T
"""


def build_numba(interleave: int, parallel: bool = True) -> Callable[..., np.ndarray]:
    """The same kernel through numba: ``interleave`` slots unrolled into scalars (as gcc does the C loop).

    ``parallel``: the blocks are shared among ``threads`` by ``prange``; otherwise one thread runs them
    without the GIL (``nogil``), to be called from several threads at once as gpuseg's engine calls its predictor.
    """
    import numba

    slots = range(interleave)
    pad = lambda lines, n: "\n".join(" " * n + line for line in lines)
    source = NUMBA_TEMPLATE.format(
        B=interleave,
        loop="numba.prange" if parallel else "range",
        init=pad([f"i{j} = U(root); x{j} = U((r + min({j}, m - 1)) * C)" for j in slots], 16),
        step=pad([line for j in slots for line in (
            f"a{j} = U4 * i{j}",
            f"n{j} = U(ints[a{j} + U2]) + U(1 - (X[x{j} + U(ints[a{j}])] <= floats[a{j} + U1]))")], 20),
        moved=" | ".join(f"(n{j} != i{j})" for j in slots),
        assign=pad([f"i{j} = n{j}" for j in slots], 20),
        accumulate=pad([line for j in slots for line in (
            f"if {j} < m:",
            "    for k in range(K):",
            f"        acc[(r - r0 + {j}) * K + k] += leafval[ints[U4 * i{j} + U(3)] * K + k]")], 16),
    )
    # unsigned indices: numba adds no wrap-around test for negative ones
    U = np.uint64
    namespace: dict[str, Any] = {"numba": numba, "np": np, "U": U, "U1": U(1), "U2": U(2), "U4": U(4)}
    exec(compile(source, f"<numba kernel B={interleave}>", "exec"), namespace)
    kernel = numba.njit(parallel=parallel, nogil=not parallel, boundscheck=False)(namespace["kernel"])

    def predict(packed: Packed, X: np.ndarray, block: int, threads: int) -> np.ndarray:
        if parallel:
            numba.set_num_threads(threads)
        X = np.ascontiguousarray(X, np.float32)
        out = np.empty((len(X), packed.n_classes), np.float64)
        kernel(packed.nodes.view(np.int32), packed.nodes.view(np.float32), packed.roots, packed.leafval.ravel(),
               X.ravel(), X.shape[1], out.ravel(), packed.n_classes, block)
        return out

    return predict


# --------------------------------------------------------------------------- candidates


@dataclass
class Result:
    forest: str
    name: str
    run: Callable[[], np.ndarray] | None = None  # None: not run (note says why)
    setup: str = "–"
    installs: str = ""
    note: str = ""
    seconds: float = float("inf")
    diff: float | None = None


def gpuseg_threaded(X: np.ndarray, forest: fo.Forest, threads: int) -> np.ndarray:
    """gpuseg's predictor as the engine runs it: one call per row block, ``threads`` calls at a time."""
    out = np.empty((len(X), forest.n_classes), np.float64)
    step = cpu.BATCH
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda s: cpu.predict_proba(X[s : s + step], forest, out=out[s : s + step]),
                      range(0, len(X), step)))
    return out


def engine_style(predict: Callable[..., np.ndarray], packed: Packed, X: np.ndarray, threads: int) -> np.ndarray:
    """A single-threaded kernel as the engine would run it: one call per :data:`cpu.BATCH` rows, ``threads`` at a time."""
    out = np.empty((len(X), packed.n_classes), np.float64)
    step = cpu.BATCH

    def one(s: int) -> None:
        out[s : s + step] = predict(packed, X[s : s + step], step, 1)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(0, len(X), step)))
    return out


@dataclass
class Shared:
    """What the forests of one run share: the compiled kernels and tl2cgen's measured compile rate."""
    workdir: Path
    c_fns: dict[int, Callable[..., None]] = field(default_factory=dict)
    numba_fns: dict[tuple[int, bool], Callable[..., np.ndarray]] = field(default_factory=dict)
    tl_rate: list[float] = field(default_factory=list)  # seconds per node on one core
    tl_probe: str = ""


def candidates(label: str, clf: Any, forest: fo.Forest, X: np.ndarray, args: argparse.Namespace,
               shared: Shared) -> list[Result]:
    """Every predictor of one forest, set up (compiled) and ready to time."""
    log = lambda msg: print(f"  [{label}] {msg}", file=sys.stderr, flush=True)
    clf.n_jobs = args.threads
    wheel = "yes (wheel)"
    out: list[Result] = [Result(label, f"scikit-learn predict_proba (n_jobs={args.threads})",
                                lambda: clf.predict_proba(X), installs=wheel)]
    t0 = time.perf_counter()
    layout.pack(forest)  # cached per forest: setup, once
    setup = f"{time.perf_counter() - t0:.1f} s pack"
    t0 = time.perf_counter()
    cpu.predict_proba(X[:64], forest)  # numba: compiled once, or loaded from its on-disk cache
    setup += f" + {time.perf_counter() - t0:.1f} s jit/cache"
    out.append(Result(label, "gpuseg cpu.predict_proba (8-byte packed nodes, numba), one call (1 thread)",
                      lambda: cpu.predict_proba(X, forest), setup, "yes (numba, llvmlite wheels)"))
    out.append(Result(label, f"gpuseg cpu.predict_proba, {cpu.BATCH}-row calls on {args.threads} threads (as the "
                      "engine)", lambda: gpuseg_threaded(X, forest, args.threads), setup, "yes (numba, llvmlite wheels)"))
    out.append(tl2cgen_candidate(label, clf, X, args, shared, log))

    block = min(args.block, -(-len(X) // args.threads))  # every thread gets a block
    t0 = time.perf_counter()
    packed = pack(forest)
    pack_s = time.perf_counter() - t0
    mb = packed.nodes.nbytes / 2**20
    for B in args.interleave:
        name = f"own C kernel (16-B nodes, BFS, {B} rows in lock step, {block}-row blocks, OpenMP)"
        try:
            t0 = time.perf_counter()
            if B not in shared.c_fns:
                log(f"cc kernel B={B}")
                shared.c_fns[B] = build_c(shared.workdir, B)
            compile_s = time.perf_counter() - t0
            fn = shared.c_fns[B]
            out.append(Result(label, name, functools.partial(c_predict, fn, packed, X, block, args.threads),
                              f"{pack_s:.1f} s pack + {compile_s:.1f} s cc ({mb:.1f} MB of nodes)",
                              "no: a C compiler at run time, or a compiled extension in gpuseg's build"))
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            out.append(Result(label, name, note=f"failed: {getattr(exc, 'stderr', None) or exc}"[:200]))
    for B in args.interleave_numba:
        for parallel in (True, False):
            if parallel:
                name = f"own numba kernel (same layout, {B} rows in lock step, {block}-row blocks, prange)"
            else:
                name = (f"own numba kernel (same, 1 thread, nogil), one call per {cpu.BATCH}-row block on "
                        f"{args.threads} threads, as the engine calls gpuseg's")
            if importlib.util.find_spec("numba") is None:
                out.append(Result(label, name, note="numba not installed (pip install numba)"))
                continue
            t0 = time.perf_counter()
            key = (B, parallel)
            if key not in shared.numba_fns:
                log(f"numba jit B={B}{'' if parallel else ', nogil'}")
                shared.numba_fns[key] = build_numba(B, parallel)
                shared.numba_fns[key](packed, X[:64], block, args.threads)  # compiles
            compile_s = time.perf_counter() - t0
            nfn = shared.numba_fns[key]
            run = functools.partial(nfn, packed, X, block, args.threads) if parallel else \
                functools.partial(engine_style, nfn, packed, X, args.threads)
            out.append(Result(label, name, run, f"{pack_s:.1f} s pack + {compile_s:.1f} s jit",
                              "yes (numba, llvmlite wheels)"))
    return out


def tl2cgen_compile(clf: Any, lib: Path, args: argparse.Namespace) -> float:
    import tl2cgen
    import treelite

    model = treelite.sklearn.import_model(clf)
    t0 = time.perf_counter()
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib), nthread=args.threads, verbose=False,
                       params={"parallel_comp": len(clf.estimators_)}, options=[args.tl2cgen_opt])
    return time.perf_counter() - t0


def tl2cgen_predict(lib: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import tl2cgen

    predictor = tl2cgen.Predictor(str(lib), nthread=threads)
    return lambda X: np.asarray(predictor.predict(tl2cgen.DMatrix(X, dtype="float32"))).reshape(len(X), -1)


def tl2cgen_candidate(label: str, clf: Any, X: np.ndarray, args: argparse.Namespace, shared: Shared,
                      log: Callable[[str], None]) -> Result:
    """tl2cgen's library of the forest, compiled if the rate measured on its first tree says it fits the budget."""
    name = f"tl2cgen compiled C (gcc {args.tl2cgen_opt}, one tree per file, nthread={args.threads})"
    if importlib.util.find_spec("tl2cgen") is None or importlib.util.find_spec("treelite") is None:
        return Result(label, name, note="treelite / tl2cgen not installed (pip install treelite tl2cgen)")
    installs = "yes (wheels), but gcc and minutes of compiling per trained forest"
    if not shared.tl_rate:  # probe: the first tree alone, compiled on one core, and its speed beside scikit-learn's
        one = first_trees(clf, 1)
        nodes = int(one.estimators_[0].tree_.node_count)
        log(f"tl2cgen probe: first tree ({nodes} nodes)")
        lib = shared.workdir / "tl2cgen_probe.so"
        seconds = tl2cgen_compile(one, lib, args)
        shared.tl_rate.append(seconds / nodes)
        rows = X[: min(len(X), 200_000)]
        one.n_jobs = 1
        predict = tl2cgen_predict(lib, 1)
        t_tl, t_sk = float("inf"), float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            predict(rows)
            t1 = time.perf_counter()
            one.predict_proba(rows)
            t_tl, t_sk = min(t_tl, t1 - t0), min(t_sk, time.perf_counter() - t1)
        shared.tl_probe = (f"probe, first tree alone, 1 thread: {seconds:.0f} s compile, "
                           f"{t_sk / t_tl:.2f}× scikit-learn")
    nodes = sum(int(e.tree_.node_count) for e in clf.estimators_)
    estimate = nodes * shared.tl_rate[0] / min(args.threads, len(clf.estimators_))
    if estimate > args.compile_budget:
        return Result(label, name, setup=f"compile est. {estimate / 60:.0f} min", installs=installs,
                      note=f"not compiled: {nodes:,} nodes at the probe's {1e3 * shared.tl_rate[0]:.1f} ms/node "
                           f"exceed --compile-budget {args.compile_budget:.0f} s; {shared.tl_probe}")
    log(f"tl2cgen compile ({nodes} nodes, est. {estimate:.0f} s)")
    lib = shared.workdir / f"tl2cgen_{len(clf.estimators_)}.so"
    seconds = tl2cgen_compile(clf, lib, args)
    predict = tl2cgen_predict(lib, args.threads)
    return Result(label, name, lambda: predict(X), f"{seconds:.0f} s compile", installs, shared.tl_probe)


def measure(results: list[Result], repeat: int, log: Callable[[str], None]) -> None:
    """Time every runnable candidate ``repeat`` times, round robin (a changing load hits all alike), best kept."""
    runnable = [r for r in results if r.run is not None]
    ref: np.ndarray | None = None
    for round_ in range(repeat):
        for r in runnable:
            log(f"  [{r.forest}] round {round_ + 1}: {r.name}")
            assert r.run is not None
            t0 = time.perf_counter()
            proba = r.run()
            r.seconds = min(r.seconds, time.perf_counter() - t0)
            if ref is None:
                ref = proba  # scikit-learn's, the first candidate
            if r.diff is None:
                r.diff = float(np.abs(np.asarray(proba, np.float64) - ref).max())
            del proba


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to predict (default 1 000 000)")
    parser.add_argument("--trees", type=int, default=100, help="trees of the full forest (default 100)")
    parser.add_argument("--small-trees", type=int, default=20, help="the data-sized forest: its first N trees")
    parser.add_argument("--train-samples", type=int, default=250_000, help="labelled voxels the forest learns from")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per candidate, round robin, best kept")
    parser.add_argument("--block", type=int, default=131072,
                        help="rows per block of the own kernels, each tree walking a whole block (at most rows/threads)")
    parser.add_argument("--interleave", type=int, nargs="+", default=[8, 16], help="rows walked in lock step (C)")
    parser.add_argument("--interleave-numba", type=int, nargs="+", default=[8], help="rows walked in lock step (numba)")
    parser.add_argument("--tl2cgen-opt", default="-O1", help="gcc optimisation for tl2cgen's code (its own: -O3)")
    parser.add_argument("--compile-budget", type=float, default=480, help="seconds a tl2cgen compile may take")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test under a minute: 100 000 rows, 10 trees (small: 5) from 10 000 samples, once")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.trees, args.small_trees, args.train_samples, args.repeat = 100_000, 10, 5, 10_000, 1
        args.interleave, args.interleave_numba = [8], [8]
    args.small_trees = min(args.small_trees, args.trees)
    start = time.perf_counter()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)

    edge = int(np.ceil(args.rows ** (1 / 3) - 1e-9))
    log(f"phantoms {edge}³ and features")
    X_train, y_train = phantom_rows(edge, args.seed + 1)
    X, _ = phantom_rows(edge, args.seed)
    X = np.ascontiguousarray(X[: args.rows])
    pick = np.random.default_rng(args.seed).choice(len(X_train), min(args.train_samples, len(X_train)), replace=False)
    log(f"training {args.trees} trees on {len(pick)} samples")
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    clf = RandomForestClassifier(n_estimators=args.trees, random_state=args.seed, n_jobs=args.threads)
    clf.fit(X_train[pick], y_train[pick])
    train_s = time.perf_counter() - t0
    forest = fo.flatten(clf)
    small_clf, small = first_trees(clf, args.small_trees), forest.first(args.small_trees)
    del X_train, y_train

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results: list[Result] = []
    forests = [(f"{args.trees} trees", clf, forest), (f"{args.small_trees} trees (first)", small_clf, small)]
    with tempfile.TemporaryDirectory(prefix="cpu_predictors_") as tmp:
        shared = Shared(Path(tmp))
        for label, c, f in reversed(forests):  # the small one first: tl2cgen's probe, then its affordable compiles
            log(f"setting up the predictors of the {label} forest")
            found = candidates(label, c, f, X, args, shared)
            measure(found, args.repeat, log)
            results = found + results
            for r in found:
                r.run = None  # frees the compiled libraries' closures before the directory goes
        del found

    def describe(f: fo.Forest) -> str:
        return f"{f.n_trees} trees, {f.n_nodes:,} nodes ({f.n_nodes // f.n_trees:,}/tree), " \
               f"{f.n_nodes * 16 / 2**20:.1f} MB as 16-byte nodes"

    import sklearn

    versions = [f"scikit-learn {sklearn.__version__}", f"numpy {np.__version__}"]
    for mod in ("treelite", "tl2cgen", "numba"):
        if importlib.util.find_spec(mod) is not None:
            versions.append(f"{mod} {__import__(mod).__version__}")
    print(f"# CPU forest predictors — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{machine()}")
    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(f"forest: {describe(forest)}; trained in {train_s:.0f} s on {len(pick):,} samples "
          f"(nmc-1 phantom {edge}³, seed {args.seed + 1}, truth at random voxels), `default` features")
    print(f"small forest: {describe(small)}")
    print(f"rows: {len(X):,} × {X.shape[1]} float32 features (nmc-1 phantom {edge}³, seed {args.seed}); "
          f"{args.threads} threads; best of {args.repeat}; {', '.join(versions)}; "
          f"{time.perf_counter() - start:.0f} s in all\n")
    sk = {r.forest: r.seconds for r in results if r.name.startswith("scikit-learn")}
    rows = []
    for r in results:
        if r.diff is None:
            rows.append([r.forest, r.name, "–", "–", "–", "–", r.setup, r.installs, r.note])
            continue
        exact = r.diff <= TOLERANCE
        rows.append([r.forest, r.name, f"{r.seconds:.2f}", f"{len(X) / r.seconds / 1e3:,.0f} k",
                     f"{sk[r.forest] / r.seconds:.2f}×", f"{r.diff:.1e}" + ("" if exact else " (INEXACT)"), r.setup,
                     r.installs, r.note])
    print(table(rows, ["forest", "predictor", "s", "rows/s", "vs scikit-learn", "max |Δp| vs scikit-learn", "setup",
                       "installs from PyPI wheels on a fresh machine", "note"]))
    for label, _, _ in forests:
        ranked = [(sk[r.forest] / r.seconds, r.name) for r in results if r.forest == label and r.diff is not None
                  and r.diff <= TOLERANCE and not r.name.startswith(("scikit-learn", "gpuseg"))]
        if ranked:
            ratio, name = max(ranked)
            print(f"\n{label}: fastest exact candidate {name}, {ratio:.2f}× scikit-learn "
                  f"({'≥' if ratio >= 1.5 else 'below'} 1.5×)")

if __name__ == "__main__":
    main()
