"""A saved race is two ordinary runs: done, owned by who saved it, with a checkpoint that loads and rebuilds its
model, loss points, one epoch row per pass, watched answers, and the knob turns in the checkpoint's metrics; they
are on the leaderboard like any run. Also the race's chart and sentences (vitdemo.views.race)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vitdemo.checkpoints import load_checkpoint
from vitdemo.config import CNNConfig, ViTConfig
from vitdemo.race.engine import Race
from vitdemo.race.knobs import Change, Knobs, RaceConfig
from vitdemo.race.save import NothingToSave, epoch_rows, save_race
from vitdemo.race.state import Mark, Point, RaceView, SideView
from vitdemo.runs import points
from vitdemo.runs.store import Registry
from vitdemo.views import race as views

CONFIG = RaceConfig(
    val_images=100,
    pool=2000,
    vit=ViTConfig(patch_size=14, embed_dim=16, depth=1, num_heads=2, mlp_ratio=1.0),
    cnn=CNNConfig(width=4, depth=1),
)
KNOBS = Knobs(train_size=500, batch_size=64, vit_patch=14, vit_depth=1, cnn_width=4, cnn_depth=1)


def test_a_saved_race_is_two_runs_with_checkpoints(tmp_home: Path, data_dir: Path) -> None:
    reg = Registry(tmp_home)
    race = Race(CONFIG, KNOBS, data_dir=str(data_dir))
    try:
        race.sync()
        with pytest.raises(NothingToSave):
            save_race(reg, race.export(), "home")
        for _ in range(10):  # 640 images: more than one pass over the 500
            race.step()
        race.set_knobs(dataclasses.replace(KNOBS, lr=2e-2))
        race.step()
        view = race.sync()
        heard: list[float] = []  # the page's progress bar
        ids = save_race(reg, race.export(), "home", progress=heard.append)
    finally:
        race.close()
        race.join(10)
    runs = [reg.get_run(i) for i in ids]
    assert [(r.kind, r.status, r.owner) for r in runs] == [("cnn", "done", "home"), ("vit", "done", "home")]
    assert heard == sorted(heard) and heard[-1] == pytest.approx(1.0) and any(0.4 < h < 0.6 for h in heard)
    for run, side in zip(runs, view.sides, strict=True):
        assert run.test_acc is not None and run.val_acc is not None and run.config["lr"] == 2e-2
        assert run.config["train_subset"] == 500 and run.config["epochs"] == 2  # 704 images: two passes begun
        loaded = load_checkpoint(run.checkpoint)  # rebuilds its network from the header
        assert loaded.kind == run.kind and loaded.meta.dataset == "mnist"
        race_meta = loaded.meta.metrics["race"]
        assert race_meta["steps"] == side.steps == 11 and [m["knob"] for m in race_meta["marks"]] == ["lr"]
        assert len(points.points(reg, run.id)) == 11  # every trained point (they are fewer than SAVED_POINTS)
        assert [e["epoch"] for e in reg.epochs(run.id)] == [1, 2]
    assert {r.id for r in reg.leaderboard("mnist")} >= set(ids)


def _point(t: float, epoch: float, val: float | None) -> Point:
    return Point(t, int(epoch * 500), int(t), epoch, 1.0 / (1 + t), 0.5, 2e-3, None if val is None else 0.5, val)


def test_epoch_rows_take_the_first_validated_point_after_each_pass() -> None:
    pts = [_point(0, 0.0, 0.1), _point(1, 0.6, None), _point(2, 1.1, 0.8), _point(3, 1.7, 0.85), _point(4, 2.2, None)]
    rows = epoch_rows(pts, 3)
    assert [(r["epoch"], r["val_acc"], r["elapsed_s"]) for r in rows] == [(1, 0.8, 2), (2, 0.85, 3), (3, 0.85, 3)]


def _view(marks: tuple[Mark, ...] = ()) -> RaceView:
    pts = tuple(_point(t, t / 10, 0.1 * t if t % 2 == 0 else None) for t in range(9))
    sides = tuple(SideView(k, None, 100, 8, 4000, 0.8, 500.0, pts, pts[:3] if k == "vit" else (), None, 0)
                  for k in ("cnn", "vit"))  # fmt: skip
    return RaceView(5, "playing", "", 8.0, CONFIG, KNOBS, sides, marks)


def test_the_race_chart_draws_both_models_and_marks_each_turn() -> None:
    mark = Mark(4.0, (640, 1500), Change("lr", 2e-3, 2e-2, ("cnn", "vit")))
    fig = views.race_figure(_view((mark,)), "seconds")
    spec = json.loads(fig.to_json())
    colors = {t["line"]["color"] for t in spec["data"]}
    assert colors == {"#5b8def", "#ff7a45"}  # the app's CNN and ViT colours
    assert len(spec["data"]) == 6  # loss and accuracy for each side, plus the ViT's faded curves before its restart
    assert [s["x0"] for s in spec["layout"]["shapes"]] == [4.0]
    assert spec["layout"]["annotations"][0]["text"] == "lr ×10"
    by_images = json.loads(views.race_figure(_view((mark,)), "images").to_json())
    assert sorted(s["x0"] for s in by_images["layout"]["shapes"]) == [640, 1500]  # where each side was


def test_each_turn_says_what_to_look_for() -> None:
    up = Change("lr", 2e-3, 2e-2, ("cnn", "vit"))
    assert views.look_for(up) == "learning rate ×10: watch the loss jump, then settle or blow up."
    noise = views.look_for(Change("label_noise", 0.0, 0.3, ("cnn", "vit")))
    assert noise.startswith("label noise 30%: 3 in 10 training labels are now wrong")
    assert "starts again" in views.look_for(Change("vit_depth", 3, 6, ("vit",), restart=True))
    for knob, old, new in [("batch_size", 64, 256), ("weight_decay", 0.05, 0.3), ("augment", 0.0, 1.0),
                           ("train_size", 5000, 500), ("cnn_width", 16, 32), ("vit_patch", 7, 4)]:  # fmt: skip
        assert views.look_for(Change(knob, old, new, ("cnn",), restart=knob.startswith(("cnn", "vit")))).endswith(".")


def test_a_frozen_figure_is_serialised_once() -> None:
    fig = views.frozen(views.race_figure(_view()))
    assert fig.to_dict() is fig.to_dict()


def test_a_students_device_reads_the_settings_as_a_table() -> None:
    rows = dict(views.knob_rows(_view()))
    assert rows["Learning rate"] == "0.002" and rows["Training images"] == "500" and rows["Data"] == "MNIST"
    assert "<td>ViT</td><td><b>14x14 patches, depth 1</b></td>" in views.knobs_html(_view())
