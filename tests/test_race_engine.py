"""The race engine on tiny models: knob turns act between steps, an architecture knob restarts only its side,
play/pause/step/reset, label noise, the gate and the idle pause, and the race trains only through the house's
`train_step`. A few seconds of CPU in all: the models are a CNN of width 4 and a one-block ViT on 14x14 patches."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vitdemo.config import CNNConfig, ViTConfig
from vitdemo.race import sides
from vitdemo.race.engine import Race
from vitdemo.race.knobs import ARCH_KNOBS, Knobs, RaceConfig, changes
from vitdemo.race.limits import RaceCap, Roster
from vitdemo.training import loop

CONFIG = RaceConfig(
    val_images=100,
    pool=2000,
    vit=ViTConfig(patch_size=14, embed_dim=16, depth=1, num_heads=2, mlp_ratio=1.0),
    cnn=CNNConfig(width=4, depth=1),
)
KNOBS = Knobs(train_size=500, batch_size=32, vit_patch=14, vit_depth=1, cnn_width=4, cnn_depth=1)


@pytest.fixture
def make_race(data_dir: Path) -> Iterator:
    made: list[Race] = []

    def make(**kwargs) -> Race:
        race = Race(CONFIG, kwargs.pop("knobs", KNOBS), data_dir=str(data_dir), **kwargs)
        made.append(race)
        race.sync()
        return race

    yield make
    for race in made:
        race.close()
        race.join(10)


@pytest.fixture
def step_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float, int, float]]:
    """Every call of vitdemo.training.loop.train_step a race makes: (kind, lr, batch, augmentation)."""
    calls: list[tuple[str, float, int, float]] = []
    real = loop.train_step

    def spy(learner, images, labels, lr):
        calls.append((learner.config.model.kind, lr, len(labels), learner.config.augment))
        return real(learner, images, labels, lr)

    monkeypatch.setattr(loop, "train_step", spy)
    return calls


def test_the_package_imports_without_torch() -> None:
    code = "import sys, vitdemo.race.engine, vitdemo.race.limits, vitdemo.race.knobs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_new_race_is_ready_with_an_untrained_point_per_side(make_race) -> None:
    view = make_race().view
    assert view.state == "ready" and view.steps == 0
    for side in view.sides:
        (point,) = side.points
        assert point.t == 0.0 and point.step == 0 and point.val_acc is not None
        assert side.watch is not None and len(side.watch.indices) == 10


def test_pause_step_and_reset(make_race) -> None:
    race = make_race()
    race.step()
    view = race.sync()
    assert view.state == "paused"
    assert [s.steps for s in view.sides] == [1, 1]  # one step of each model
    assert all(s.points[-1].step == 1 and s.points[-1].val_acc is not None for s in view.sides)
    assert view.t > 0
    race.play()
    view = race.wait(lambda v: v.state == "playing" and v.steps > 10, 30)
    assert view.steps > 10
    race.pause()
    paused = race.sync()
    assert paused.state == "paused"
    assert race.wait(lambda v: v.steps != paused.steps, 0.3).steps == paused.steps  # nothing moves while paused
    race.reset()
    view = race.sync()
    assert view.state == "ready" and view.steps == 0 and view.t == 0 and not view.marks
    assert all(len(s.points) == 1 for s in view.sides)


def test_a_knob_acts_between_steps_and_is_marked(make_race, step_log) -> None:
    race = make_race()
    real = loop.train_step

    def turn_during_a_step(learner, images, labels, lr):  # a teacher turns two knobs while the CNN steps
        if not step_log:
            race.set_knobs(dataclasses.replace(KNOBS, lr=1e-2, batch_size=16, augment=1.0))
        return real(learner, images, labels, lr)

    loop.train_step, inner = turn_during_a_step, loop.train_step
    try:
        race.step()
        race.sync()
    finally:
        loop.train_step = inner
    race.step()
    view = race.sync()
    old, new = (KNOBS.lr, 32, 0.0), (1e-2, 16, 1.0)
    assert [c[1:] for c in step_log] == [old, old, new, new]  # the step under way finished with the old knobs
    assert [m.change.knob for m in view.marks] == ["lr", "batch_size", "augment"]
    assert all(m.t == view.marks[0].t and m.images == (32, 32) for m in view.marks)
    assert view.sides[0].points[-1].lr == 1e-2


def test_an_architecture_knob_restarts_only_its_side(make_race) -> None:
    race = make_race()
    for _ in range(3):
        race.step()
    before = race.sync()
    cnn_model = race.call(lambda: race._sides["cnn"].learner.model).result(10)
    race.set_knobs(dataclasses.replace(KNOBS, vit_depth=2))
    race.step()
    view = race.sync()
    vit, cnn = view.side("vit"), view.side("cnn")
    assert vit.restarts == 1 and vit.model.depth == 2 and vit.steps == 1
    assert vit.before == before.side("vit").points  # its old curve, kept faded
    assert cnn.restarts == 0 and cnn.steps == 4 and not cnn.before
    assert race.call(lambda: race._sides["cnn"].learner.model).result(10) is cnn_model
    (mark,) = view.marks
    assert mark.change.restart and mark.change.sides == ("vit",)


def test_changes_name_which_side_restarts() -> None:
    turned = changes(KNOBS, dataclasses.replace(KNOBS, cnn_width=8, lr=1e-3))
    assert [(c.knob, c.sides, c.restart) for c in turned] == [
        ("lr", ("cnn", "vit"), False),
        ("cnn_width", ("cnn",), True),
    ]
    assert set(ARCH_KNOBS) == {"vit_patch", "vit_depth", "cnn_width", "cnn_depth"}


def test_label_noise_turns_that_share_of_labels_wrong(data_dir: Path) -> None:
    data = sides.load_race_data(CONFIG, str(data_dir))
    clean = data.pool.labels[:500]
    some, more = sides.noisy_labels(data, 500, 0.2), sides.noisy_labels(data, 500, 0.5)
    assert int((some != clean).sum()) == 100 and int((more != clean).sum()) == 250
    assert bool(((some != clean) <= (more != clean)).all())  # more noise keeps the wrong labels of less
    split = sides.training_set(data, dataclasses.replace(KNOBS, label_noise=0.5))
    assert torch.equal(split.labels, more) and torch.equal(split.images, data.pool.images[:500])


def test_label_noise_reaches_the_training_steps(make_race, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = loop.train_step

    def keep(learner, images, labels, lr):
        seen.append((images.clone(), labels.clone()))
        return real(learner, images, labels, lr)

    monkeypatch.setattr(loop, "train_step", keep)
    race = make_race(knobs=dataclasses.replace(KNOBS, batch_size=256))
    race.set_knobs(dataclasses.replace(KNOBS, batch_size=256, label_noise=0.8))
    race.step()
    race.sync()
    data = sides.load_race_data(CONFIG, str(data_dir))
    truth = {bytes(img.numpy()): int(y) for img, y in zip(data.pool.images[:500], data.pool.labels[:500], strict=True)}
    images, labels = seen[0]
    wrong = sum(truth[bytes(img.numpy())] != int(y) for img, y in zip(images, labels, strict=True))
    assert len(labels) == 256 and 0.7 < wrong / 256 < 0.9  # 400 of the 500 labels are wrong


def test_the_race_trains_only_through_train_step(make_race, monkeypatch: pytest.MonkeyPatch) -> None:
    """With train_step replaced by one that changes nothing, stepping the race changes no weight."""
    race = make_race()
    before = race.call(lambda: {k: s.learner.model.state_dict() for k, s in race._sides.items()}).result(10)
    before = {k: {n: t.clone() for n, t in d.items()} for k, d in before.items()}
    calls = []

    def idle_step(learner, images, labels, lr):
        calls.append(learner.config.model.kind)
        return torch.tensor(2.3), torch.zeros(len(labels), 10)

    monkeypatch.setattr(loop, "train_step", idle_step)
    for _ in range(3):
        race.step()
    race.sync()
    after = race.call(lambda: {k: s.learner.model.state_dict() for k, s in race._sides.items()}).result(10)
    assert calls == ["cnn", "vit"] * 3
    for kind in ("cnn", "vit"):
        assert all(torch.equal(before[kind][n], t) for n, t in after[kind].items() if t.is_floating_point())


def test_both_sides_meet_the_same_batches(make_race, step_log, monkeypatch: pytest.MonkeyPatch) -> None:
    batches: dict[str, list[torch.Tensor]] = {"cnn": [], "vit": []}
    real = loop.train_step

    def keep(learner, images, labels, lr):
        batches[learner.config.model.kind].append(images.clone())
        return real(learner, images, labels, lr)

    monkeypatch.setattr(loop, "train_step", keep)
    race = make_race()
    for _ in range(2):
        race.step()
    race.sync()
    assert all(torch.equal(a, b) for a, b in zip(batches["cnn"], batches["vit"], strict=True))


def test_a_gate_holds_a_playing_race(make_race) -> None:
    answer = ["a run is training"]
    race = make_race(gate=lambda: answer[0] or None)
    race.play()
    view = race.wait(lambda v: v.state == "waiting", 10)
    assert view.state == "waiting" and view.reason == "a run is training" and view.steps == 0
    answer[0] = ""
    assert race.wait(lambda v: v.state == "playing" and v.steps > 0, 10).steps > 0


def test_a_race_nobody_looks_at_pauses_itself(make_race) -> None:
    race = make_race(idle_pause_s=0.3)
    race.play()
    view = race.wait(lambda v: v.state == "paused", 15)
    assert view.state == "paused" and "nobody" in view.reason


def test_the_roster_keeps_the_teachers_cap() -> None:
    now = [0.0]
    roster = Roster(clock=lambda: now[0])
    cap = RaceCap(student_races=1)
    assert roster.gate("a", cap, lambda: False) is None
    assert "most the teacher allows" in (roster.gate("b", cap, lambda: False) or "")
    assert roster.gate("a", cap, lambda: False) is None  # a racing race goes on
    now[0] += 10  # "a" stopped asking: paused, or its tab closed
    assert roster.gate("b", cap, lambda: False) is None and roster.racing() == 1
    assert "queue" in (roster.gate("b", cap, lambda: True) or "")  # a queued run trains: students' races wait
    assert roster.racing() == 0
    assert roster.gate("b", dataclasses.replace(cap, while_runs=True), lambda: True) is None
    assert "off" in (roster.gate("c", RaceCap(student_races=0), lambda: False) or "")


def test_the_cap_is_stored_and_only_the_teacher_sets_it(tmp_home: Path) -> None:
    from vitdemo.race.limits import get_cap, set_cap
    from vitdemo.runs.people import CLI, Actor, NotAllowed
    from vitdemo.runs.store import Registry

    reg = Registry(tmp_home)
    assert get_cap(reg) == RaceCap()
    set_cap(reg, RaceCap(3, 2000, True), CLI)
    assert get_cap(reg) == RaceCap(3, 2000, True)
    with pytest.raises(NotAllowed):
        set_cap(reg, RaceCap(), Actor("person:1", "Ana"))


def test_quick_turns_of_one_knob_make_one_mark(make_race) -> None:
    race = make_race()
    race.step()
    for lr in (5e-3, 1e-2, 2e-2):  # a slider moved notch by notch
        race.set_knobs(dataclasses.replace(KNOBS, lr=lr))
        race.sync()
    (mark,) = race.view.marks
    assert (mark.change.old, mark.change.new) == (KNOBS.lr, 2e-2)
    race.set_knobs(KNOBS)  # and back where it was: no turn left to mark
    assert race.sync().marks == ()


def test_a_share_slows_a_race_and_says_why(make_race) -> None:
    share = [1.0]
    race = make_race(share=lambda: share[0])
    race.play()
    view = race.wait(lambda v: v.steps > 20, 20)
    assert view.reason == ""
    share[0] = 0.2
    slowed = race.wait(lambda v: v.reason.startswith("slowed down"), 10)
    assert slowed.state == "playing"

    def compute() -> tuple[float, float]:
        return time.monotonic(), race.call(lambda: sum(s.compute_s for s in race._sides.values())).result(10)

    t0, c0 = compute()
    time.sleep(2.0)
    t1, c1 = compute()
    assert (c1 - c0) / (t1 - t0) < 0.5  # about a fifth of the core (plus a step), not all of it
