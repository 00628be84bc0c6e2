"""Dataset readers: formats, and clear errors for malformed or truncated files."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.loaders import DatasetError, load_dataset, read_idx
from eventsnn.loaders.datasets import FileRows, balanced_sample

from .conftest import SHARED_DATA


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_idx_gz_and_raw(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(labels))
    x, y = load_dataset(tmp_path)
    np.testing.assert_array_equal(np.round(x[:, 0] * 255), images)
    np.testing.assert_array_equal(y, labels)


def test_truncated_idx_is_refused(tmp_path):
    (tmp_path / "cut-idx3-ubyte").write_bytes(_idx(np.zeros((3, 4, 4)))[:-5])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(tmp_path / "cut-idx3-ubyte")


@pytest.mark.skipif(not (SHARED_DATA / "mnist").exists(), reason="real MNIST not available")
def test_real_mnist_files():
    x, y = load_dataset(SHARED_DATA / "mnist", "test")
    assert x.shape == (10000, 1, 28, 28) and x.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_cifar10_python_batches_in_a_tar_gz(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (6, 3072)).astype(np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, 6)]
    raw = pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"testing batch 1 of 1"})
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    x, y = load_dataset(archive, "test")
    assert x.shape == (6, 3, 32, 32)
    np.testing.assert_array_equal(np.round(x * 255).reshape(6, -1), data)
    np.testing.assert_array_equal(y, labels)


def test_cifar_pickle_with_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(DatasetError, match="may not use"):
        load_dataset(tmp_path, "test")


def test_cifar_pickle_with_a_structured_dtype_is_refused_before_any_cast(tmp_path):
    """Regression: a batch whose array has a structured dtype (whose fields a pickle may place
    outside the element) is refused, not cast (which read stray memory or crashed)."""
    data = np.zeros((2, 3072), np.dtype([("a", np.uint8)]))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1]}))
    with pytest.raises(DatasetError, match="plain integer or float array"):
        load_dataset(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": "ab"}))
    with pytest.raises(DatasetError, match="labels"):
        load_dataset(tmp_path, "test")


def test_cifar_binary_batches(tmp_path):
    rng = np.random.default_rng(2)
    records = rng.integers(0, 256, (4, 3073)).astype(np.uint8)
    (tmp_path / "test_batch.bin").write_bytes(records.tobytes())
    x, y = load_dataset(tmp_path / "test_batch.bin")
    np.testing.assert_array_equal(y, records[:, 0])
    np.testing.assert_array_equal(np.round(x * 255).reshape(4, -1), records[:, 1:])
    (tmp_path / "cut.bin").write_bytes(records.tobytes()[:-10])
    with pytest.raises(DatasetError, match="whole number"):
        load_dataset(tmp_path / "cut.bin")


def test_image_folder_with_splits(tmp_path):
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    expected = {}
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            pixels = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
            image.fromarray(pixels).save(folder / "0.png")
            expected[(split, label)] = pixels
    x, y = load_dataset(tmp_path, "test")
    assert x.shape == (2, 3, 8, 8) and list(y) == [0, 1]
    np.testing.assert_array_equal(np.round(x[1] * 255).transpose(1, 2, 0), expected[("test", "dog")])
    (tmp_path / "test" / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot decode"):
        load_dataset(tmp_path, "test")


def _lazy_equals_eager(path, split="test"):
    eager_x, eager_y = load_dataset(path, split)
    lazy_x, lazy_y = load_dataset(path, split, lazy=True)
    assert len(lazy_x) == len(eager_x) and lazy_x.shape == eager_x.shape
    np.testing.assert_array_equal(lazy_x[1:3], eager_x[1:3])
    np.testing.assert_array_equal(np.asarray(lazy_x), eager_x)
    np.testing.assert_array_equal(lazy_y, eager_y)
    return lazy_x


def test_lazy_images_stay_on_disk_where_the_format_allows(tmp_path):
    rng = np.random.default_rng(5)
    images, labels = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 10, 6)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    (mnist / "t10k-images-idx3-ubyte").write_bytes(_idx(images))
    (mnist / "t10k-labels-idx1-ubyte").write_bytes(_idx(labels))
    assert isinstance(_lazy_equals_eager(mnist).data, FileRows)

    x = rng.integers(0, 256, (7, 3, 4, 4)).astype(np.uint8)
    np.savez(tmp_path / "plain.npz", x=x, y=np.arange(7))
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=np.arange(7))
    assert isinstance(_lazy_equals_eager(tmp_path / "plain.npz").data, FileRows)
    assert not isinstance(_lazy_equals_eager(tmp_path / "packed.npz").data, FileRows)

    records = rng.integers(0, 256, (4, 3073)).astype(np.uint8)
    (tmp_path / "test_batch.bin").write_bytes(records.tobytes())
    assert isinstance(_lazy_equals_eager(tmp_path / "test_batch.bin").data, FileRows)
    lazy = load_dataset(tmp_path / "test_batch.bin", "test", lazy=True)[0]
    np.testing.assert_array_equal(lazy[[3, 0]], load_dataset(tmp_path / "test_batch.bin", "test")[0][[3, 0]])


def test_a_data_file_truncated_during_a_run_is_an_error_not_a_crash(tmp_path):
    """Regression: memory-mapped data that shrank under a run ended it with SIGBUS."""
    x = np.random.default_rng(0).integers(0, 256, (50, 1, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(50, np.int64))
    lazy, _ = load_dataset(tmp_path / "d.npz", "test", lazy=True)
    np.testing.assert_array_equal(lazy[:10], x[:10] / np.float32(255))
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DatasetError, match="changed during the run|shorter than when it was opened"):
        lazy[40:50]


def test_another_file_moved_in_during_a_run_is_refused(tmp_path):
    """Regression: the data file is reopened for every chunk, so a same-size file moved in during
    `run` changed the results silently (SNN 8-44% against ANN 98.6%, rc 0). A copy of the same
    file (new time stamp, same content) is still the same data."""
    rng = np.random.default_rng(0)
    x, other = (rng.integers(0, 256, (50, 1, 8, 8)).astype(np.uint8) for _ in range(2))
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(50, np.int64))
    np.savez(tmp_path / "other.npz", x=other, y=np.zeros(50, np.int64))
    lazy, _ = load_dataset(tmp_path / "d.npz", "test", lazy=True)
    np.testing.assert_array_equal(lazy[:10], x[:10] / np.float32(255))
    (tmp_path / "copy.npz").write_bytes((tmp_path / "d.npz").read_bytes())
    os.replace(tmp_path / "copy.npz", tmp_path / "d.npz")
    np.testing.assert_array_equal(lazy[10:20], x[10:20] / np.float32(255))
    assert (tmp_path / "other.npz").stat().st_size == (tmp_path / "d.npz").stat().st_size
    os.replace(tmp_path / "other.npz", tmp_path / "d.npz")
    with pytest.raises(DatasetError, match="changed during the run"):
        lazy[20:30]


def test_a_dask_worker_refuses_another_file_at_the_same_path_and_says_it_is_the_worker(tmp_path):
    from eventsnn.loaders.datasets import file_identity
    from eventsnn.scaleout import _images

    x = np.zeros((4, 1, 2, 2), np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.zeros(4, np.int64))
    fingerprint = file_identity(tmp_path / "d.npz")[2]
    assert len(_images(str(tmp_path / "d.npz"), "test", fingerprint)) == 4
    np.savez(tmp_path / "d.npz", x=x + 1, y=np.zeros(4, np.int64))
    with pytest.raises(DatasetError, match="Dask worker .* another file than the one the client read"):
        _images(str(tmp_path / "d.npz"), "test", fingerprint)
    with pytest.raises(DatasetError, match="Dask worker .*readable by every worker"):
        _images(str(tmp_path / "missing.npz"), "test", None)


def test_lazy_float_images_are_checked_when_read(tmp_path):
    x = np.full((3, 1, 2, 2), 0.5, np.float32)
    x[2] = 7.0
    np.savez(tmp_path / "bad.npz", x=x, y=np.zeros(3, np.int64))
    lazy_x, _ = load_dataset(tmp_path / "bad.npz", lazy=True)
    assert lazy_x[:2].max() == 0.5
    with pytest.raises(DatasetError, match="bad.npz: float x must lie in"):
        lazy_x[2:]


def test_truncated_uncompressed_npz_is_refused_lazily_too(tmp_path):
    np.savez(tmp_path / "full.npz", x=np.zeros((50, 1, 8, 8), np.uint8), y=np.zeros(50, np.int64))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DatasetError, match="cut.npz"):
        load_dataset(tmp_path / "cut.npz", lazy=True)


def test_a_file_called_test_does_not_make_a_folder_cifar(tmp_path):
    """Regression: an image-folder tree that holds some file named 'test' is read as images; the
    CIFAR-100 layout (train, test beside meta) still is CIFAR."""
    from PIL import Image

    for c in ("cats", "dogs"):
        (tmp_path / "images" / c).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / c / "a.png")
    (tmp_path / "images" / "dogs" / "test").write_text("notes")
    x, y = load_dataset(tmp_path / "images", "test")
    assert x.shape == (2, 3, 8, 8) and list(y) == [0, 1]
    cifar = tmp_path / "cifar-100-python"
    cifar.mkdir()
    for split, n in (("train", 4), ("test", 3)):
        (cifar / split).write_bytes(pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": list(range(n))}))
    (cifar / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}))
    x, y = load_dataset(tmp_path / "cifar-100-python", "test")
    assert x.shape == (3, 3, 32, 32) and list(y) == [0, 1, 2]


@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=8), n=st.integers(1, 120), seed=st.integers(0, 9))
@settings(max_examples=60, deadline=None)
def test_a_sample_of_a_class_sorted_set_holds_every_class_evenly(counts, n, seed):
    """Regression: --limit N took the first N images, all of one class in sets stored class by class."""
    labels = np.repeat(np.arange(len(counts)), counts)
    rows = balanced_sample(labels, min(n, labels.size), seed)
    assert rows.size == min(n, labels.size) and np.all(np.diff(rows) > 0)  # sorted, distinct
    taken = np.bincount(labels[rows], minlength=len(counts))
    # round robin: a class with images left holds at most one fewer than any other class
    left = taken < np.asarray(counts)
    if left.any():
        assert taken.max() - taken[left].min() <= 1
    assert np.all(taken >= np.minimum(counts, min(n, labels.size) // len(counts)))
    np.testing.assert_array_equal(rows, balanced_sample(labels, min(n, labels.size), seed))  # seeded


def test_a_sample_reads_its_rows_from_disk_and_from_memory(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (50, 1, 4, 4)).astype(np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx(images[:, 0]))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.arange(50) // 10))
    on_disk, labels = load_dataset(tmp_path, lazy=True)
    rows = balanced_sample(labels, 15)
    for x in (on_disk, load_dataset(tmp_path, lazy=True)[0].take(np.arange(50))):
        sample = x.take(rows) if x.rows is None else x.take(x.rows[rows])
        np.testing.assert_array_equal(np.round(sample[:] * 255), images[rows])
        np.testing.assert_array_equal(np.round(sample[3:9] * 255), images[rows[3:9]])
        np.testing.assert_array_equal(sample.head(4).rows, rows[:4])
    assert sorted(np.bincount(labels[rows])) == [3] * 5


def test_calibration_subsets_spread_over_a_class_sorted_set():
    """--calibrate and --exit auto take a few hundred of the calibration images: evenly spread, so a
    set stored class by class gives every class (its first images were one or two classes)."""
    from eventsnn.loaders.datasets import Images

    classes = np.repeat(np.arange(10), 50).astype(np.uint8)  # 500 images, class by class; pixel value = class
    images = Images(np.broadcast_to(classes[:, None, None, None], (500, 1, 2, 2)).copy(), "sorted")
    assert len(np.unique(np.asarray(images.head(40))[:, 0, 0, 0])) == 1
    spread = np.asarray(images.spread(40))
    assert len(spread) == 40 and np.array_equal(np.unique(np.round(spread[:, 0, 0, 0] * 255)), np.arange(10))
    assert images.spread(1000) is images
