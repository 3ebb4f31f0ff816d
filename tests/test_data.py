import shutil
from pathlib import Path

import pytest
import torch

from vitdemo.data import RAW_FILES, DataError, batches, load_dataset, load_raw, to_input
from vitdemo.paths import data_root
from vitdemo.training.augment import augment


def test_mnist_loads_as_uint8_with_the_published_counts(data_dir: str) -> None:
    train = load_raw("mnist", train=True, data_dir=data_dir)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == torch.uint8
    counts = torch.bincount(train.labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_fashion_mnist_loads(data_dir: str) -> None:
    test = load_raw("fashion", train=False, data_dir=data_dir)
    assert test.images.shape == (10000, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_the_files_read_as_torchvision_reads_them_and_a_damaged_one_is_one_error(data_dir: str, tmp_path: Path) -> None:
    import torchvision.datasets as tvd  # the reference only: the app reads the files itself (no seconds of import)

    for dataset, name in (("mnist", "MNIST"), ("fashion", "FashionMNIST")):
        ours, theirs = load_raw(dataset, train=False, data_dir=data_dir), getattr(tvd, name)(data_dir, train=False)
        assert torch.equal(ours.images, theirs.data) and torch.equal(ours.labels, theirs.targets)
        assert ours.labels.dtype == torch.int64 and ours.images.is_contiguous()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copyfile(data_root(data_dir) / "MNIST" / "raw" / name, raw / name)
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-10])  # cut short
    with pytest.raises(DataError, match=r"MNIST in .* cannot be read \(t10k-labels-idx1-ubyte holds 9,990 values"):
        load_raw("mnist", train=False, data_dir=tmp_path)
    labels.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="not an IDX file"):
        load_raw("mnist", train=False, data_dir=tmp_path)


def test_split_is_seeded_and_disjoint(data_dir: str) -> None:
    a = load_dataset("mnist", data_dir, val_size=5000, seed=1)
    b = load_dataset("mnist", data_dir, val_size=5000, seed=1)
    c = load_dataset("mnist", data_dir, val_size=5000, seed=2)
    assert len(a.train) == 55000 and len(a.val) == 5000 and len(a.test) == 10000
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    # no validation image is also a training image (compare by content hash of a few)
    train_keys = {bytes(img.numpy()) for img in a.train.images[:20000]}
    assert sum(bytes(img.numpy()) in train_keys for img in a.val.images[:500]) < 5  # MNIST has a few duplicates


def test_missing_data_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.mnist as tvm

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvm, "download_and_extract_archive", no_network)
    with pytest.raises(DataError) as err:
        load_raw("mnist", train=False, data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "VITDEMO_DATA_DIR" in message


def test_data_dir_flag_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITDEMO_DATA_DIR", "/from/env")
    assert data_root("/from/flag") == Path("/from/flag")
    assert data_root(None) == Path("/from/env")


def test_batches_cover_every_index_once() -> None:
    from vitdemo.data import Split

    split = Split(torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28), torch.arange(10))
    seen = torch.cat([y for _, y in batches(split, 3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(y) for _, y in batches(split, 4, shuffle=False)] == [4, 4, 2]


def test_augment_moves_pixels_but_keeps_shape_and_is_off_at_zero() -> None:
    x = to_input(torch.zeros(8, 28, 28, dtype=torch.uint8), 0.1307, 0.3081)
    x[:, :, 10:18, 12:16] = 2.0
    assert torch.equal(augment(x, 0.0), x)
    y = augment(x, 1.0, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert (y - x).abs().mean() > 0.01
    # background stays background (border padding), so no dark frame appears
    assert torch.allclose(y[:, :, 0, 0], x[:, :, 0, 0])


def test_hflip_mirrors_about_half_the_batch_and_only_when_asked() -> None:
    x = to_input(torch.zeros(64, 28, 28, dtype=torch.uint8), 0.0, 1.0)
    x[:, :, 8:20, 4:10] = 1.0  # a bar on the left: its mirror sits on the right
    tiny = 1e-6  # practically no rotation, scale or shift
    plain = augment(x, tiny, torch.Generator().manual_seed(0))
    assert torch.allclose(plain, x, atol=1e-3)
    y = augment(x, tiny, torch.Generator().manual_seed(0), hflip=True)
    mirrored = torch.tensor([torch.allclose(img, x[0].flip(-1), atol=1e-3) for img in y])
    unchanged = torch.tensor([torch.allclose(img, x[0], atol=1e-3) for img in y])
    assert bool((mirrored | unchanged).all())
    assert 16 <= int(mirrored.sum()) <= 48


def test_mnist_statistics_live_in_one_place_and_preprocessing_stays_torch_free() -> None:
    import subprocess
    import sys

    from vitdemo.data import normalization
    from vitdemo.preprocess import pipeline as preprocess

    assert (preprocess.MNIST_MEAN, preprocess.MNIST_STD) == normalization("mnist") == (0.1307, 0.3081)
    code = "import sys, vitdemo.preprocess.pipeline, vitdemo.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr  # the Draw page's preprocessing does not load torch
