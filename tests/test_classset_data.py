"""The class set as data: an evaluation split scored through vitdemo.evaluate, the MNIST-layout export read back
with torchvision's own IDX readers, the "which model reads our class best" table and its cache, and frozen
snapshots that a training run adds to MNIST's training images."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import math
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import DIGIT_STROKES, stroke_image
from measure import read_idx

from vitdemo.checkpoints import load_checkpoint, read_meta
from vitdemo.classset import store as classset
from vitdemo.classset.data import (
    ClassSetEmpty,
    as_split,
    freeze,
    freeze_config,
)
from vitdemo.classset.export import IMAGES_NAME, LABELS_NAME, export_zip, idx_bytes, write_export
from vitdemo.classset.scores import score_table
from vitdemo.classset.store import Answer, ClassSet
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, default_run_name
from vitdemo.data import DataError, load_dataset, load_raw
from vitdemo.evaluate import score_checkpoint
from vitdemo.runs.people import Actor
from vitdemo.runs.store import Registry
from vitdemo.training.loop import Callback, load_data, train
from vitdemo.training.snapshot import load_snapshot, with_class_set

N_TEST = 12  # MNIST test digits submitted as if a class had drawn them


@pytest.fixture(scope="module")
def test_digits(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_raw("mnist", train=False, data_dir=data_dir)
    return split.images[:N_TEST].numpy(), split.labels[:N_TEST].numpy()


@pytest.fixture
def filled(tmp_path: Path, test_digits: tuple[np.ndarray, np.ndarray]) -> ClassSet:
    """A class set holding N_TEST real MNIST test digits (drawn by 'Ana' and '=HYPERLINK(...)'), each with answers."""
    store = ClassSet(tmp_path / "home", max_per_minute=100)
    images, labels = test_digits
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        who = Actor("person:1", "Ana") if i % 2 else Actor("person:2", '=HYPERLINK("http://x")')
        answers = [
            Answer("vit", "shipped vit_mnist", int(label), 0.9),
            Answer("cnn", "run #3", (int(label) + 1) % 10, 0.6),
        ]
        classset.submit(store, image, int(label), who, answers, now=1000.0 + i)
    return store


def test_the_class_split_scores_like_mnist_through_the_one_scoring_path(
    filled: ClassSet, test_digits: tuple[np.ndarray, np.ndarray], mnist_checkpoints: Path
) -> None:
    data = as_split(filled)
    images, labels = test_digits
    assert len(data) == N_TEST and data.missing == 0 and data.split.images.dtype == torch.uint8
    assert sorted(data.split.labels.tolist()) == sorted(labels.tolist())
    assert list(data.ids) == list(range(N_TEST, 0, -1))  # newest first
    loaded = load_checkpoint(mnist_checkpoints / "cnn_mnist.safetensors")
    scores = score_checkpoint(loaded, data.split)
    assert scores.accuracy >= 0.9  # real digits, re-centred by preprocessing, read as MNIST is

    os.remove(filled.image_dir / filled.get(3).input)  # a file removed by hand: the rest still counts
    assert len(as_split(filled)) == N_TEST - 1 and as_split(filled).missing == 1
    assert len(as_split(filled, "fashion")) == 0


def test_the_export_is_mnist_layout_that_torchvision_reads(filled: ClassSet, tmp_path: Path) -> None:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    out = write_export(filled, tmp_path / "out" / "class.zip")
    assert out.count == N_TEST and out.skipped == 0
    with zipfile.ZipFile(tmp_path / "out" / "class.zip") as zf:
        names = set(zf.namelist())
        for name in (IMAGES_NAME, LABELS_NAME):
            (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(zf.read(name)))
        rows = list(csv.DictReader(io.StringIO(zf.read("class-set.csv").decode())))
    images = read_image_file(str(tmp_path / "class-images-idx3-ubyte"))  # (N, 28, 28) uint8
    labels = read_label_file(str(tmp_path / "class-labels-idx1-ubyte"))  # (N,) int64
    subs = sorted(filled.list(), key=lambda s: s.id)  # oldest first, as in the files
    assert images.shape == (N_TEST, 28, 28) and labels.tolist() == [s.label for s in subs]
    assert np.array_equal(images.numpy(), np.stack([filled.input_image(s) for s in subs]))  # white ink on black
    assert images[:, 0, 0].max() == 0 and images.max() == 255
    assert {f"drawings/{s.id:05d}-{s.label}.png" for s in subs} <= names and "README.txt" in names
    assert [int(r["id"]) for r in rows] == [s.id for s in subs]
    assert rows[0]["who"] == '\'=HYPERLINK("http://x")'  # a formula is escaped: a spreadsheet shows it as text
    assert rows[1]["who"] == "Ana" and rows[0]["fooled CNN"] == "1" and rows[0]["fooled ViT"] == "0"
    assert rows[0]["ViT model"] == "shipped vit_mnist" and float(rows[0]["CNN probability"]) == 0.6


def test_idx_bytes_are_mnist_headers() -> None:
    data = idx_bytes(np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert data[:4] == b"\x00\x00\x08\x03" and data[4:16] == b"\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
    assert read_idx(data).tolist() == [[[0, 1, 2], [3, 4, 5]]]
    assert read_idx(idx_bytes(np.zeros(0, np.uint8))).shape == (0,)
    with pytest.raises(ValueError, match="uint8"):
        idx_bytes(np.zeros(3, np.int64))


def test_an_empty_set_exports_empty_files(tmp_path: Path) -> None:
    found = export_zip(ClassSet(tmp_path))
    with zipfile.ZipFile(io.BytesIO(found.data)) as zf:
        assert read_idx(gzip.decompress(zf.read(IMAGES_NAME))).shape == (0, 28, 28)
    assert found.count == 0


# --- which model reads our class best ---------------------------------------------------------------------
def test_every_run_is_scored_on_the_class_set_and_cached(filled: ClassSet, mnist_checkpoints: Path) -> None:
    reg = Registry(filled.home)
    copy = reg.checkpoint_dir / "run-1.safetensors"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(mnist_checkpoints / "cnn_mnist.safetensors", copy)
    reg.create_run(name="=my cnn", kind="cnn", dataset="mnist", config={}, status="done", checkpoint=str(copy))
    broken = reg.checkpoint_dir / "run-2.safetensors"
    broken.write_bytes(b"not a checkpoint")
    reg.create_run(name="broken", kind="cnn", dataset="mnist", config={}, status="done", checkpoint=str(broken))

    scored: list[str] = []
    heard: list[float] = []  # the page's progress bar
    rows = score_table(
        filled, reg, shipped_dir=mnist_checkpoints, on_score=lambda c: scored.append(c.name), progress=heard.append
    )
    assert heard == [(i + 1) / 6 for i in range(6)]  # after each model scored, the share of the six
    by_name = {r.candidate.name: r for r in rows}
    # fashion models and pretrained encoders (no trained head) are not listed; the shipped fine-tunes are
    assert set(by_name) == {"=my cnn", "broken", "cnn-mnist-lean", "vit-mnist-100", "CNN + SimCLR, 100 labels",
                            "ViT + MAE, 100 labels"}  # fmt: skip
    expected = score_checkpoint(load_checkpoint(copy), as_split(filled).split).accuracy
    assert by_name["=my cnn"].accuracy == pytest.approx(expected) and by_name["=my cnn"].n == N_TEST
    assert by_name["=my cnn"].candidate.run_id == 1 and by_name["cnn-mnist-lean"].candidate.shipped
    assert by_name["broken"].accuracy is None and "could not be loaded" in by_name["broken"].problem
    assert rows[-1].candidate.name == "broken"  # unscored last
    assert len(scored) == 6

    scored.clear()
    again = score_table(filled, reg, shipped_dir=mnist_checkpoints, on_score=lambda c: scored.append(c.name))
    assert scored == ["broken"] and [r.accuracy for r in again] == [r.accuracy for r in rows]  # from the cache
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))  # retrained in place
    classset.submit(filled, stroke_image(DIGIT_STROKES["7"]), 7, Actor("person:9", "Cy"))  # the set changed
    scored.clear()
    rows = score_table(filled, reg, shipped_dir=mnist_checkpoints, on_score=lambda c: scored.append(c.name))
    assert len(scored) == 6 and {r.n for r in rows} == {N_TEST + 1}


def test_an_empty_set_scores_nothing(tmp_path: Path, mnist_checkpoints: Path) -> None:
    rows = score_table(ClassSet(tmp_path), Registry(tmp_path), shipped_dir=mnist_checkpoints)
    assert len(rows) >= 2 and all(r.n == 0 and r.accuracy is None for r in rows)
    assert not (tmp_path / "classset").exists()  # nothing written for an empty set


# --- training on the class set --------------------------------------------------------------------------------
def test_a_snapshot_is_frozen_once_and_read_without_pickle(filled: ClassSet, tmp_path: Path) -> None:
    with pytest.raises(ClassSetEmpty, match="no mnist drawings yet"):
        freeze(ClassSet(tmp_path / "empty"))
    path = freeze(filled, repeat=3)
    assert path.is_absolute() and freeze(filled, repeat=3) == path  # the same content, the same file
    snap = load_snapshot(path)
    data = as_split(filled)
    assert snap.repeat == 3 and snap.dataset == "mnist" and list(snap.ids) == list(data.ids)
    assert np.array_equal(snap.images, data.split.images.numpy()) and snap.labels.tolist() == data.split.labels.tolist()

    classset.submit(filled, stroke_image(DIGIT_STROKES["1"]), 1, Actor("person:9", "Cy"))
    assert freeze(filled, repeat=3) != path and load_snapshot(path).ids.tolist() == list(data.ids)  # unchanged

    pickled = tmp_path / "evil.npz"
    np.savez(pickled, images=np.array([object()]), labels=np.zeros(1), ids=np.zeros(1), repeat=1, dataset="mnist")
    for bad, message in ((pickled, "cannot be read"), (tmp_path / "gone.npz", "was not found")):
        with pytest.raises(DataError, match=message):
            load_snapshot(bad)
    with pytest.raises(ConfigError, match="repeat"):
        freeze(filled, repeat=0)


def test_extra_data_is_validated_and_named() -> None:
    base = TrainConfig(model=CNNConfig())
    for good in ("", "class", "/runs/classset/snapshots/class-mnist-0123.npz"):
        dataclasses.replace(base, extra_data=good).validate()
    for bad, message in (("mnist", "extra_data must be"), ("/a/file.pt", "extra_data must be")):
        with pytest.raises(ConfigError, match=message):
            dataclasses.replace(base, extra_data=bad).validate()
    with pytest.raises(ConfigError, match="label budget"):
        dataclasses.replace(base, extra_data="class", labels=100).validate()
    config = dataclasses.replace(base, extra_data="class")
    assert default_run_name(config).endswith("-class") and TrainConfig.from_dict(config.to_dict()) == config


def test_load_data_adds_the_frozen_drawings_to_the_training_images_only(filled: ClassSet, data_dir: Path) -> None:
    config = TrainConfig(model=CNNConfig(), train_subset=200, val_size=100, extra_data="class")
    frozen = freeze_config(config, filled.home, repeat=4)
    assert frozen.extra_data.endswith(".npz") and Path(frozen.extra_data).is_file()
    assert freeze_config(TrainConfig(), filled.home) == TrainConfig()  # nothing to freeze
    plain = load_dataset("mnist", data_dir, val_size=100, train_subset=200)
    data = load_data(frozen, data_dir)
    snap = load_snapshot(frozen.extra_data)
    assert len(data.train) == 200 + 4 * N_TEST
    assert torch.equal(data.train.images[:200], plain.train.images)  # MNIST's first, unchanged
    assert torch.equal(data.train.images[200:204], torch.from_numpy(snap.images[:1]).repeat(4, 1, 1))
    assert data.train.labels[200:].tolist() == np.repeat(snap.labels, 4).tolist()
    assert torch.equal(data.val.images, plain.val.images) and len(data.test) == 10_000

    fashion = dataclasses.replace(frozen, dataset="fashion")
    with pytest.raises(DataError, match="holds mnist drawings, but this run trains on fashion"):
        load_data(fashion, data_dir)
    with pytest.raises(ClassSetEmpty):
        freeze_config(TrainConfig(extra_data="class"), filled.home / "nobody")
    with pytest.raises(DataError, match="frozen into a snapshot"):  # the training loop never reads the live set
        with_class_set(plain, "class")


def test_a_shipped_cnn_fine_tunes_on_the_class_set_plus_mnist(
    filled: ClassSet, data_dir: Path, mnist_checkpoints: Path
) -> None:
    shipped = mnist_checkpoints / "cnn_mnist.safetensors"
    config = TrainConfig(
        model=read_meta(shipped).model_config, init=str(shipped), extra_data="class", epochs=1, train_subset=200,
        val_size=100, batch_size=64, lr=3e-4, warmup_epochs=0.0, device="cpu", keep="last",
    )  # fmt: skip
    config = freeze_config(config, filled.home, repeat=5)
    config.validate()
    steps: list[int] = []

    class Steps(Callback):
        def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
            steps.append(total_steps)

    result = train(config, (Steps(),), data_dir=data_dir)  # train -> load_data: MNIST plus the snapshot
    assert steps == [math.ceil((200 + 5 * N_TEST) / 64)]  # one epoch over both
    scores = score_checkpoint(dataclasses.replace(load_checkpoint(shipped), model=result.model), as_split(filled).split)
    assert result.history[0].train_acc > 0.8 and scores.accuracy >= 0.75  # started from the shipped weights
