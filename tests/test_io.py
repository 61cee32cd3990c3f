from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from gpuseg import io, volumes
from gpuseg.errors import InputError, OutputError, ParameterError
from gpuseg.io import tiff


@pytest.fixture
def volume():
    return np.random.default_rng(1).integers(0, 60000, (13, 17, 19), dtype=np.uint16)


def write_folder(folder: Path, vol: np.ndarray, name=lambda z: f"s{z}.tif") -> Path:
    folder.mkdir()
    for z, page in enumerate(vol):
        tifffile.imwrite(folder / name(z), page)
    return folder


def test_ingest_folder_in_natural_order(tmp_path, volume):
    # s2.tif must come before s10.tif: plain string order would scramble the stack
    src = write_folder(tmp_path / "slices", volume)
    arr = volumes.ingest(src, tmp_path / "v.zarr/raw", voxel_size=397, chunks=(4, 8, 8))
    np.testing.assert_array_equal(arr[:], volume)
    assert arr.chunks == (4, 8, 8)
    assert arr.attrs["voxel_size_nm"] == [397.0] * 3
    assert arr.attrs["source"] == str(src) and "gpuseg_version" in arr.attrs
    assert arr.metadata.codecs[-1].to_dict()["name"] == "zstd"


@pytest.mark.parametrize("kind", ["tiff", "hdf5", "npy", "zarr"])
def test_ingest_every_format(tmp_path, volume, kind):
    if kind == "tiff":
        src = tmp_path / "stack.tif"
        tifffile.imwrite(src, volume)
    elif kind == "hdf5":
        with h5py.File(tmp_path / "scan.h5", "w") as f:
            f.create_dataset("exchange/data", data=volume, chunks=(4, 17, 19))
        src = tmp_path / "scan.h5/exchange/data"
    elif kind == "npy":
        src = tmp_path / "v.npy"
        np.save(src, volume)
    else:
        src = tmp_path / "in.zarr/raw"
        arr = io.create_array(src, volume.shape, volume.dtype, (5, 5, 5), {"voxel_size_nm": [1.0, 2.0, 3.0]})
        arr[:] = volume
    arr = volumes.ingest(src, tmp_path / "out.zarr", chunks=6)
    np.testing.assert_array_equal(arr[:], volume)
    if kind == "zarr":  # voxel size travels from input to output
        assert arr.attrs["voxel_size_nm"] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("target", ["out.tif", "out_slices"])
def test_export_roundtrip(tmp_path, volume, target):
    arr = io.create_array(tmp_path / "v.zarr/raw", volume.shape, volume.dtype, (4, 17, 19), {"voxel_size_nm": [5.0] * 3})
    arr[:] = volume
    volumes.export(tmp_path / "v.zarr/raw", tmp_path / target)
    out = tmp_path / target
    back = tifffile.imread(out) if target.endswith(".tif") else np.stack([tifffile.imread(f) for f in tiff.list_slices(out)])
    np.testing.assert_array_equal(back, volume)


def test_export_switches_to_bigtiff_over_the_limit(tmp_path, volume, monkeypatch):
    np.save(tmp_path / "v.npy", volume)
    monkeypatch.setattr(tiff, "BIGTIFF_LIMIT", volume.nbytes - 1)
    volumes.export(tmp_path / "v.npy", tmp_path / "big.tif")
    monkeypatch.setattr(tiff, "BIGTIFF_LIMIT", volume.nbytes + 1)
    volumes.export(tmp_path / "v.npy", tmp_path / "small.tif")
    with tifffile.TiffFile(tmp_path / "big.tif") as big, tifffile.TiffFile(tmp_path / "small.tif") as small:
        assert big.is_bigtiff and not small.is_bigtiff
        np.testing.assert_array_equal(big.asarray(), volume)


def test_crop_central_and_at_start(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    arr = volumes.crop(tmp_path / "v.npy", tmp_path / "c.zarr", size=5, chunks=2)
    np.testing.assert_array_equal(arr[:], volume[4:9, 6:11, 7:12])
    arr = volumes.crop(tmp_path / "v.npy", tmp_path / "d.zarr", size=(3, 4, 5), start=(1, 2, 3))
    np.testing.assert_array_equal(arr[:], volume[1:4, 2:6, 3:8])
    with pytest.raises(ParameterError):
        volumes.crop(tmp_path / "v.npy", tmp_path / "e.zarr", size=(3, 4, 5), start=(12, 0, 0))


def test_missing_input(tmp_path):
    for path in ("nope.tif", "nope.zarr/raw", "nope_folder", "nope.npy", "nope.h5/data"):
        with pytest.raises(InputError, match="no such"):
            volumes.ingest(tmp_path / path, tmp_path / "o.zarr")


def test_truncated_tiff_is_reported(tmp_path, volume):
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, volume)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="stack.tif"):
        volumes.ingest(src, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()
    src.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="not a readable TIFF"):
        volumes.ingest(src, tmp_path / "o.zarr")


def test_folder_with_mismatched_slices(tmp_path, volume):
    folder = write_folder(tmp_path / "slices", volume)
    tifffile.imwrite(folder / "s5.tif", volume[5, :-1])
    with pytest.raises(InputError, match="s5.tif.*share shape and dtype"):
        volumes.ingest(folder, tmp_path / "o.zarr")
    tifffile.imwrite(folder / "s5.tif", volume[5].astype(np.float32))
    with pytest.raises(InputError, match="s5.tif"):
        volumes.ingest(folder, tmp_path / "o.zarr")


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int64])
def test_unsupported_dtype(tmp_path, dtype):
    np.save(tmp_path / "v.npy", np.zeros((3, 3, 3), dtype))
    with pytest.raises(InputError, match="not supported"):
        volumes.ingest(tmp_path / "v.npy", tmp_path / "o.zarr")


def test_existing_output_is_kept_without_overwrite(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    volumes.ingest(tmp_path / "v.npy", tmp_path / "o.zarr/raw")
    np.save(tmp_path / "w.npy", volume + 1)
    with pytest.raises(OutputError, match="--overwrite"):
        volumes.ingest(tmp_path / "w.npy", tmp_path / "o.zarr/raw")
    np.testing.assert_array_equal(io.open_array(tmp_path / "o.zarr/raw")[:], volume)
    volumes.ingest(tmp_path / "w.npy", tmp_path / "o.zarr/raw", overwrite=True)
    np.testing.assert_array_equal(io.open_array(tmp_path / "o.zarr/raw")[:], volume + 1)
    assert sorted(p.name for p in (tmp_path / "o.zarr").iterdir()) == ["raw", "zarr.json"]  # no leftovers


def test_failed_overwrite_keeps_the_old_output(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    volumes.ingest(tmp_path / "v.npy", tmp_path / "o.zarr")
    src = tmp_path / "bad.tif"
    tifffile.imwrite(src, volume)
    src.write_bytes(src.read_bytes()[: volume.nbytes // 2])
    with pytest.raises(InputError):
        volumes.ingest(src, tmp_path / "o.zarr", overwrite=True)
    np.testing.assert_array_equal(io.open_array(tmp_path / "o.zarr")[:], volume)


def test_unwritable_output(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    (tmp_path / "afile").write_text("x")
    for target in ("afile/o.zarr", "afile/o.tif"):
        with pytest.raises(OutputError, match="cannot write"):
            volumes.export(tmp_path / "v.npy", tmp_path / target)


def test_zarr_group_path_names_its_arrays(tmp_path, volume):
    io.create_array(tmp_path / "g.zarr/raw", volume.shape, volume.dtype, (4, 4, 4))
    with pytest.raises(InputError, match="is a zarr group.*raw"):
        io.open_array(tmp_path / "g.zarr")


@pytest.mark.parametrize("dtype, codec", [(np.uint8, "zstd"), (np.uint16, "zstd"), (np.float32, "blosc"), (np.float16, "blosc")])
def test_codec_follows_dtype_and_round_trips(tmp_path, dtype, codec):
    rng = np.random.default_rng(0)
    data = (rng.random((20, 24, 28)) * 200).astype(dtype)
    arr = io.create_array(tmp_path / "v.zarr/a", data.shape, dtype, (8, 8, 8))
    arr[:] = data
    back = io.open_array(tmp_path / "v.zarr/a")
    assert back.metadata.codecs[-1].to_dict()["name"] == codec
    np.testing.assert_array_equal(back[:], data)  # lossless, exact bits
