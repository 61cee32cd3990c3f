"""The figures say what they show: titles, legends with the users' and classes' names, slice indices,
scale bars of the voxel size, the truth panel, colour bars; and they read only the slices they draw."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tifffile

from gpuseg import demo, io, plots, volumes
from gpuseg.bench import report
from gpuseg.io import metadata, slices
from tests.conftest import run_cli

SHAPE = (12, 20, 16)
VOXEL = 397.0


def _texts(fig) -> list[str]:
    """Every piece of text drawn in the figure (titles, labels, legends, annotations)."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text())]


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for lg in legends for t in lg.get_texts()]


def _scale_bars(ax) -> tuple[list, list]:
    return ([p for p in ax.patches if p.get_gid() == "scale-bar"],
            [t for t in ax.texts if t.get_gid() == "scale-bar-label"])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small grey volume, two two-phase segmentations, a three-phase truth, with voxel size and names."""
    root = tmp_path_factory.mktemp("fig") / "s.zarr"
    rng = np.random.default_rng(0)
    grey = rng.integers(60, 200, SHAPE).astype(np.uint8)
    truth = rng.integers(1, 4, SHAPE).astype(np.uint8)
    a = np.where(grey > 120, 1, 2).astype(np.uint8)
    b = np.where(grey > 140, 1, 2).astype(np.uint8)
    size = {metadata.VOXEL_SIZE_KEY: [VOXEL] * 3}
    names = {"phase_names": {"1": "active", "2": "non-active"}}
    volumes.save(grey, f"{root}/raw", chunks=4, attrs=size)
    volumes.save(truth, f"{root}/truth", chunks=4, attrs=size)
    volumes.save(a, f"{root}/a", chunks=4, attrs={**size, **names})
    volumes.save(b, f"{root}/b", chunks=4, attrs={**size, **names})
    return {"root": root, "grey": grey, "truth": truth, "a": a, "b": b}


# --------------------------------------------------------------------------- scale bars and names


@pytest.mark.parametrize("nm, expected", [(7940.0, 5000.0), (1.2e4, 1e4), (450.0, 200.0), (99.9, 50.0), (2e6, 2e6)])
def test_nice_length_is_round_and_not_longer(nm, expected):
    assert plots.nice_length(nm) == expected


def test_scale_bar_length_matches_voxel_size():
    fig, ax = plots.subplots()
    ax.imshow(np.zeros((50, 200)))
    length = plots.add_scale_bar(ax, 200, 397.0, 50)
    (bar,), (label,) = _scale_bars(ax)
    assert length == 20000.0  # 30 % of 200 px × 397 nm = 23.8 µm → 20 µm
    assert bar.get_width() * 397.0 == pytest.approx(length)
    assert label.get_text() == "20 µm"


def test_class_names_from_attributes_else_convention():
    model = {"classes": [1, 2, 3], "class_names": ["NMC", "binder", "void"]}
    assert metadata.label_names([0, 1, 2, 3], model) == {1: "NMC", 2: "binder", 3: "void"}
    assert metadata.label_names([1, 2], {"phase_names": {"1": "active", "2": "non-active"}}) == {1: "active", 2: "non-active"}
    assert metadata.label_names([1, 2, 3]) == {1: "active", 2: "carbon-binder", 3: "pore"}
    assert plots.class_label(4, "class 4") == "class 4" and plots.class_label(1, "active") == "1 active"


# --------------------------------------------------------------------------- histogram


def test_histogram_names_thresholds_phases_and_method():
    centers = np.arange(256.0)
    counts = np.exp(-((centers - 128) / 30) ** 2) * 1000
    fig = plots.build_histogram(counts, centers, thresholds={"Otsu t1": 115, "Otsu t2": 140}, title="otsu of raw.zarr")
    ax = fig.axes[0]
    lines = [ln for ln in ax.lines if ln.get_gid() == "threshold-line"]
    assert sorted(ln.get_xdata()[0] for ln in lines) == [115, 140]
    texts = _texts(fig)
    assert "Otsu t1 = 115" in texts and "Otsu t2 = 140" in texts
    assert fig._suptitle.get_text().startswith("otsu of raw.zarr")
    assert _legend_texts(fig) == ["3 pore", "2 carbon-binder", "1 active"]

    fig = plots.build_histogram(counts, centers, window=(110, 150))
    assert sorted(ln.get_xdata()[0] for ln in fig.axes[0].lines if ln.get_gid() == "window-line") == [110, 150]
    assert {"low 110", "high 150"} <= set(_texts(fig))
    assert "seeds 1 active" in _legend_texts(fig) and "seeds 2 non-active" in _legend_texts(fig)


# --------------------------------------------------------------------------- orthoslices


def test_orthoslices_titles_names_scale_bars_and_truth(study):
    root = study["root"]
    segs = [f"{root}/a", f"{root}/b"]
    fig = plots.build_orthoslices(segs, grey=f"{root}/raw", truth=f"{root}/truth", names=["U1", "U2"])
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 3 * 4  # U1, U2, truth, U1 − U2
    rows = [axes[3 * r].get_ylabel() for r in range(4)]
    assert rows == ["U1", "U2", "truth", "U1 − U2"]
    for r in range(4):
        titles = [axes[3 * r + c].get_title() for c in range(3)]
        assert titles[0].endswith("z = 6 of 12") and titles[1].endswith("y = 10 of 20") and titles[2].endswith("x = 8 of 16")
    assert re.match(r"\d+\.\d % differ · z = 6 of 12", axes[9].get_title())
    for ax, width in zip(axes[:3], (16, 16, 20)):  # horizontal axes: x, x, y
        (bar,), (label,) = _scale_bars(ax)
        value, unit = label.get_text().split()
        nm = float(value) * {"nm": 1, "µm": 1e3}[unit]
        assert bar.get_width() * VOXEL == pytest.approx(nm)
        assert nm == plots.nice_length(nm) and nm <= 0.3 * width * VOXEL
    legend = _legend_texts(fig)
    assert {"1 active", "2 non-active / carbon-binder", "3 pore", "A − B: only A is active"} <= set(legend)
    cbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(cbars) == 1 and "grey value" in cbars[0].get_ylabel()
    assert "U1, U2 and the truth" in fig._suptitle.get_text() and "voxel 397 nm" in fig._suptitle.get_text()

    fig = plots.build_orthoslices(segs, names=["U1", "U2"])  # no truth, no grey: no truth row, no colour bar
    axes = fig.axes
    assert [axes[3 * r].get_ylabel() for r in range(3)] == ["U1", "U2", "U1 − U2"]
    assert "truth" not in " ".join(_texts(fig)) and not any(ax.get_label() == "<colorbar>" for ax in axes)


def test_orthoslices_use_model_class_names_and_chosen_slices():
    labels = np.ones(SHAPE, np.uint8)
    labels[:, :, 8:] = 2
    arr = np.asarray(labels)
    fig = plots.build_orthoslices([_Attrs(arr, {"classes": [1, 2], "class_names": ["NMC", "binder"]})],
                                  names=["forest"], indices=(1, 2, 3))
    assert {"1 NMC", "2 binder"} <= set(_legend_texts(fig))
    assert [ax.get_title() for ax in fig.axes] == ["z = 1 of 12", "y = 2 of 20", "x = 3 of 16"]
    assert not any(_scale_bars(ax)[0] for ax in fig.axes)  # no voxel size: no scale bar, and the title says so
    assert "voxel size unknown" in fig._suptitle.get_text()
    with pytest.raises(Exception, match="outside the volume"):
        plots.build_orthoslices([arr], indices=(12, 0, 0))


class _Attrs:
    """An array with attributes (like a zarr array)."""

    def __init__(self, data, attrs):
        self.data, self.attrs, self.shape = data, attrs, data.shape

    def __getitem__(self, key):
        return self.data[key]


class _Spy:
    """A zarr array that records what is read from it."""

    def __init__(self, arr):
        self.arr, self.keys = arr, []
        self.shape, self.attrs = arr.shape, arr.attrs

    def __getitem__(self, key):
        self.keys.append(key)
        return self.arr[key]


def _one_slice(key, shape) -> bool:
    """Whether ``key`` selects exactly one plane: one integer index, full slices elsewhere."""
    key = key if isinstance(key, tuple) else (key,)
    ints = [k for k in key if isinstance(k, (int, np.integer))]
    rest = [k for k in key if not isinstance(k, (int, np.integer))]
    return len(ints) == 1 and all(k == slice(None) for k in rest) and len(key) <= len(shape)


def test_orthoslices_read_three_slices_per_volume(study, monkeypatch, tmp_path):
    root = study["root"]
    spies: list[_Spy] = []
    real = io.open_array

    def spying(path, *args, **kwargs):
        spies.append(_Spy(real(path, *args, **kwargs)))
        return spies[-1]

    monkeypatch.setattr(slices, "open_array", spying)
    fig = plots.build_orthoslices([f"{root}/a", f"{root}/b"], grey=f"{root}/raw", truth=f"{root}/truth")
    assert len(spies) == 4
    for spy in spies:
        assert len(spy.keys) == 3 and all(_one_slice(k, SHAPE) for k in spy.keys), spy.keys
    # the slices drawn are the volume's own
    views = slices.read_slices(f"{root}/a")
    assert np.array_equal(views.images[1], study["a"][:, SHAPE[1] // 2])
    assert fig is not None


@pytest.mark.parametrize("name", ["g.tif", "slices", "g.npy", "g.h5/data"])
def test_slices_of_every_format_equal_the_volume(study, tmp_path, name):
    g = study["grey"]
    path = tmp_path / name
    if name == "slices":
        path.mkdir()
        for z, page in enumerate(g):
            tifffile.imwrite(path / f"s{z}.tif", page)
    elif name.endswith(".tif"):
        tifffile.imwrite(path, g)
    elif name.endswith(".npy"):
        np.save(path, g)
    else:
        import h5py

        with h5py.File(tmp_path / "g.h5", "w") as f:
            f["data"] = g
    views = slices.read_slices(str(path), indices=(3, 4, 5))
    for got, want in zip(views.images, (g[3], g[:, 4], g[:, :, 5])):
        assert got.dtype == g.dtype and np.array_equal(got, want)


# --------------------------------------------------------------------------- variability


def _report(names, fractions, truth=None):
    rep = {"phases": [1, 2], "segmentations": [{"name": n, "fractions": {"1": f, "2": 1 - f}} for n, f in zip(names, fractions)],
           "fraction_std": {"1": float(np.std(fractions, ddof=1)), "2": float(np.std(fractions, ddof=1))},
           "mean_pairwise_percent": 3.5}
    if truth is not None:
        rep["truth"] = {"name": "t", "fractions": {"1": truth, "2": 1 - truth}}
    return rep


def test_variability_legend_names_users_and_ticks_name_methods():
    reports = {"threshold": _report(["U1", "U2", "U3"], [0.5, 0.52, 0.55], truth=0.51),
               "watershed": _report(["U1", "U2"], [0.49, 0.5], truth=0.51)}
    fig = plots.build_variability(reports)
    assert _legend_texts(fig) == ["U1", "U2", "U3", "truth"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["threshold", "watershed"]
    assert len([c for c in fig.axes[0].collections if c.get_gid() == "truth-line"]) == 2
    assert "1 active" in fig.axes[0].get_title() and "threshold, watershed" in fig._suptitle.get_text()
    bars = list(fig.axes[0].patches)  # one bar per user and method, coloured by user
    assert len(bars) == 5 and bars[0].get_facecolor() == bars[3].get_facecolor() != bars[1].get_facecolor()

    fig = plots.build_variability({"m": _report(["A", "B"], [0.4, 0.6])}, title="compare of A, B")
    assert _legend_texts(fig) == ["A", "B"] and fig._suptitle.get_text().startswith("compare of A, B")


# --------------------------------------------------------------------------- the CLI's figures


def test_cli_figures_carry_names_truth_and_method(study, monkeypatch, tmp_path):
    root = study["root"]
    saved: dict[str, object] = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, **kw: saved.__setitem__(str(path), fig))
    assert run_cli("compare", f"{root}/a", f"{root}/b", "--truth", f"{root}/truth", "--two-phase", "--names", "U1", "U2",
                   "--plot", tmp_path / "v.png", "--slices", tmp_path / "s.png", "--grey", f"{root}/raw",
                   "--scheduler", "synchronous", "-q") == 0
    slices, bars = saved[str(tmp_path / "s.png")], saved[str(tmp_path / "v.png")]
    assert [slices.axes[3 * r].get_ylabel() for r in range(4)] == ["U1", "U2", "truth", "U1 − U2"]
    assert _legend_texts(bars)[:2] == ["U1", "U2"] and "truth" in _legend_texts(bars)
    assert "U1, U2" in bars._suptitle.get_text()
    assert run_cli("segment", "watershed", f"{root}/raw", tmp_path / "w.zarr", "--low", "110", "--high", "150",
                   "--plot", tmp_path / "h.png", "--scheduler", "synchronous", "-q") == 0
    title = saved[str(tmp_path / "h.png")]._suptitle.get_text()
    assert "watershed" in title and f"{root}/raw" in title


def test_demo_figure_panels(study, monkeypatch, tmp_path):
    """demo.png: raw and filtered slices, the histogram with the shown user's threshold, their segmentation, the truth
    and the difference; the segmentation is the one the report names (u1's S2 of the filtered tomogram)."""
    store, folder = tmp_path / "phantom.zarr", tmp_path / "study"
    size = {metadata.VOXEL_SIZE_KEY: [VOXEL] * 3}
    volumes.save(study["grey"], f"{store}/raw", chunks=4, attrs=size)
    volumes.save(study["truth"], f"{store}/truth", chunks=4, attrs=size)
    volumes.save(study["grey"].astype(np.float32), folder / "filtered.zarr", chunks=4, attrs={**size, "sigma": [1.1] * 3})
    for protocol, seg in (("S1", "b"), ("S2", "a")):
        volumes.save(study[seg], folder / f"segmentations/filtered/{protocol}/u1.zarr", chunks=4,
                     attrs={**size, "phase_names": {"1": "active", "2": "non-active"}})
    report = {"results": [{"variant": "filtered", "protocol": p, "users": [{"user": "u1", "path": f"segmentations/filtered/{p}/u1.zarr"}]}
                          for p in ("S1", "S2")],
              "users": [{"user": "u1", "decisions": {"filtered": {"threshold": 123.4}}}]}
    assert demo.shown(report) == ("filtered", "S2", "u1")
    saved = {}
    monkeypatch.setattr(demo, "save_figure", lambda fig, path, **kw: saved.setdefault("fig", fig))
    demo._figure(report, str(folder), f"{store}/raw", f"{store}/truth", tmp_path / "d.png", {"chunks": 4}, "nmc-2")
    fig = saved["fig"]
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.endswith("z = 6 of 12") for t in titles) == 5  # raw, filtered, segmentation, truth, difference
    assert any("σ = 1.1 voxel" in t for t in titles) and any(t.startswith("truth") for t in titles)
    assert any(t.startswith("u1's S2 segmentation (filtered)") for t in titles)
    differ = 100 * np.mean((study["a"][6] == 1) != (study["truth"][6] == 1))
    assert any(t.startswith(f"segmentation − truth: {differ:.1f} % differ") for t in titles)
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 2
    assert {"1 active", "2 non-active", "3 pore", "u1 = 123.4"} <= set(_texts(fig))
    assert sum(len(_scale_bars(ax)[0]) for ax in fig.axes) == 5
    assert "(nmc-2), voxel 397 nm" in fig._suptitle.get_text()


def test_bench_plot_names_stages_references_and_units():
    rows = [{"size": n, "voxels": n**3, "stage": "filter", "device": "cpu", "voxels_per_s": 1e6 * n / 32,
             "reference": {"name": "scipy.ndimage.gaussian_filter", "seconds": 1.0, "voxels_per_s": 2e6}} for n in (32, 64)]
    result = {"results": rows, "machine": {"summary": "test machine"}, "date": "2026-01-02T03:04:05+00:00"}
    fig = report.build_plot(result)
    assert _legend_texts(fig) == ["filter: gpuseg (cpu)", "filter: reference (scipy.ndimage.gaussian_filter)"]
    assert "test machine; 2026-01-02 03:04 UTC" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["32³", "64³"]
    assert report._rate_tick(1e6) == "1 MVox/s"
