"""Resume: a run saved at an epoch's end goes on as if it had never stopped, in-process, from the queue and from
the worker's execute path; the file holds tensors and JSON, never a pickle."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import vitdemo.synth.styles
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import load_dataset, num_batches
from vitdemo.runs import claims, execute, queue
from vitdemo.runs.limits import Limits
from vitdemo.runs.people import CLI, Actor, NotAllowed
from vitdemo.runs.store import OverLimit, Registry
from vitdemo.training.loop import Callback, StepInfo, lr_at, train
from vitdemo.training.resume import (
    HEADER_KEY,
    ResumeError,
    load_state,
    read_header,
    resume_config,
    saved_epoch,
    state_path,
    still_to_train,
)

# Everything that draws random numbers: shuffling, affine + elastic + pen width, styles, dropout.
CONFIG = TrainConfig(
    model=CNNConfig(width=4, depth=1, dropout=0.2),
    epochs=2,
    batch_size=100,
    lr=4e-3,
    device="cpu",
    seed=3,
    augment=1.0,
    stroke_aug=1.0,
    elastic=1.0,
    styles_ratio=0.1,
    train_subset=600,
    val_size=200,
)


@pytest.fixture(scope="module")
def data(data_dir: Path):
    return load_dataset("mnist", data_dir, val_size=200, seed=0, train_subset=600)


@pytest.fixture(autouse=True)
def small_style_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vitdemo.synth.styles, "POOL_SIZE", 200)  # rendering 3,000 digits per test is not the point


class StopAfterEpoch(Callback):
    """Ask the loop to stop once `epochs` epochs have finished (as a cancel or a killed process would)."""

    def __init__(self, epochs: int = 1) -> None:
        self.epochs, self.done = epochs, 0
        self.steps: list[StepInfo] = []

    def on_step(self, info: StepInfo) -> None:
        self.steps.append(info)

    def on_epoch(self, info) -> None:
        self.done = info.epoch

    def stop(self) -> bool:
        return self.done >= self.epochs


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("keep", ["last", "best"])
def test_one_epoch_plus_a_resumed_one_equals_two_straight(data, tmp_path: Path, keep: str) -> None:
    config = dataclasses.replace(CONFIG, keep=keep)
    straight = train(config, data=data)
    stopper = StopAfterEpoch(1)
    first = train(
        config, [stopper], data=data, should_stop=stopper.stop, state_path=tmp_path / "run-1.resume.safetensors"
    )
    assert first.cancelled and len(first.history) == 1
    seen = StopAfterEpoch(99)
    resumed = train(resume_config(tmp_path / "run-1.resume.safetensors"), [seen], data=data)
    assert not resumed.cancelled and seen.done == 2 and {s.epoch for s in seen.steps} == {2}  # only epoch 2 ran
    assert same(straight.model.state_dict(), resumed.model.state_dict())  # exactly, not within a tolerance
    assert [e.val_acc for e in resumed.history] == [e.val_acc for e in straight.history]
    assert [e.train_loss for e in resumed.history] == [e.train_loss for e in straight.history]
    assert (resumed.best_epoch, resumed.val_acc, resumed.kept) == (straight.best_epoch, straight.val_acc, straight.kept)


def test_the_file_is_safetensors_with_a_json_header_and_no_pickle(data, tmp_path: Path) -> None:
    path = tmp_path / "run-4.resume.safetensors"
    train(dataclasses.replace(CONFIG, epochs=1), data=data, state_path=path)
    assert path.read_bytes()[:2] != b"\x80\x04"  # not a pickle stream
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        header = json.loads(f.metadata()[HEADER_KEY])
    assert {"rng.torch", "rng.generator", "rng.numpy"} <= keys
    assert any(k.startswith("model.") for k in keys) and any(k.startswith("optim.") for k in keys)
    assert any(k.startswith("best.") for k in keys)  # KeepBest's weights
    assert header["epoch"] == 1 and header["step"] == num_batches(600, 100) and header["config"]["seed"] == 3
    assert len(header["history"]) == 1 and header["optimizer"]["param_groups"][0]["betas"] == [0.9, 0.99]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind
    state = load_state(path)
    assert state.config == dataclasses.replace(CONFIG, epochs=1) and state.optimizer["state"]
    assert saved_epoch(tmp_path, 4) == 1 and saved_epoch(tmp_path, 5) is None


def test_extending_follows_the_longer_schedule_from_the_step_reached(data, tmp_path: Path) -> None:
    path = tmp_path / "run-2.resume.safetensors"
    done = train(CONFIG, data=data, state_path=path)  # finished: its cosine is near 0 at the end
    assert done.history[-1].lr < 0.1 * CONFIG.lr
    with pytest.raises(ResumeError, match="already trained 2 epochs"):
        resume_config(path)  # nothing left to train without more epochs
    steps = StopAfterEpoch(99)
    longer = train(resume_config(path, epochs=4), [steps], data=data)
    spe = num_batches(600, 100)
    expected = [lr_at(s, 4 * spe, spe, CONFIG.lr, "cosine") for s in range(2 * spe, 4 * spe)]
    assert [s.lr for s in steps.steps] == pytest.approx(expected)  # the 4-epoch cosine from step 12 on
    assert steps.steps[0].lr > 0.4 * CONFIG.lr  # a warm restart, then down to 0 at epoch 4
    assert [e.epoch for e in longer.history] == [1, 2, 3, 4] and longer.history[-1].epochs == 4


def test_a_resumed_run_keeps_its_settings(data, data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "run-3.resume.safetensors"
    stopper = StopAfterEpoch(1)
    train(CONFIG, [stopper], data=data, should_stop=stopper.stop, state_path=path)
    with pytest.raises(ResumeError, match="keeps its settings: lr cannot change"):
        resume_config(path, lr=0.1)
    changed = dataclasses.replace(resume_config(path), stroke_aug=0.5)
    with pytest.raises(ResumeError, match="stroke_aug = 1.0, not 0.5"):
        train(changed, data=data)
    other_data = load_dataset("mnist", data_dir, val_size=200, seed=0, train_subset=500)
    with pytest.raises(ResumeError, match="steps per epoch"):
        train(dataclasses.replace(resume_config(path), train_subset=600), data=other_data)
    moved = resume_config(path, device="cpu", name="elsewhere")  # where and under which name may change
    assert moved.name == "elsewhere" and moved.resume == str(path.resolve())


def test_a_damaged_or_foreign_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "run-9.resume.safetensors"
    bad.write_bytes(b"\x00" * 5)
    with pytest.raises(ResumeError, match="not a vitdemo resume file"):
        read_header(bad)
    with pytest.raises(ResumeError, match="not found"):
        read_header(tmp_path / "missing.resume.safetensors")
    checkpoint = Path(__file__).parent.parent / "checkpoints" / "cnn_mnist.safetensors"
    if checkpoint.is_file():
        with pytest.raises(ResumeError, match="not a vitdemo resume file"):
            read_header(checkpoint)  # a model checkpoint is not a resume file


def test_queue_resume_continues_a_cancelled_run_in_the_execute_path(data_dir: Path, tmp_path: Path) -> None:
    """The Train page's path: a run that stopped after epoch 1 is resumed by its owner, a worker executes the new
    run, and the result has the weights the uninterrupted run has."""
    reg = Registry(tmp_path / "home")
    owner, stranger = Actor("person:1", "Ada"), Actor("person:2", "Bob")
    config = dataclasses.replace(CONFIG, keep="last")
    run_id = queue.submit(reg, config, owner)
    assert claims.claim(reg, run_id, pid=1) is not None
    stopper = StopAfterEpoch(1)
    data = load_dataset("mnist", data_dir, val_size=200, seed=0, train_subset=600)
    train(config, [stopper], data=data, should_stop=stopper.stop, state_path=state_path(reg.checkpoint_dir, run_id))
    reg.add_epoch(run_id, {"epoch": 1, "val_acc": 0.5})
    with pytest.raises(ResumeError, match="still running"):
        queue.resume(reg, run_id, owner)
    reg.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time())

    with pytest.raises(NotAllowed, match="only they or the teacher can resume it"):
        queue.resume(reg, run_id, stranger)
    new_id = queue.resume(reg, run_id, owner)
    new = reg.get_run(new_id)
    assert (
        new.status == "queued"
        and new.owner == "person:1"
        and new.config["resume"].endswith(f"run-{run_id}.resume.safetensors")
    )
    assert [e["epoch"] for e in reg.epochs(new_id)] == [1]  # its curves start with the epoch it continues

    claimed = claims.claim(reg, new_id, pid=1)
    result = execute.execute_run(reg, claimed, data_dir=str(data_dir))
    assert result is not None and reg.get_run(new_id).status == "done"
    assert [e["epoch"] for e in reg.epochs(new_id)] == [1, 2]
    assert same(result.model.state_dict(), train(config, data=data).model.state_dict())
    assert saved_epoch(reg.checkpoint_dir, new_id) == 2  # and it can be extended again later
    never_ran = queue.submit(reg, config, CLI)
    queue.request_cancel(reg, never_ran, CLI)
    with pytest.raises(ResumeError, match="nothing to continue from"):
        queue.resume(reg, never_ran, CLI)


def test_the_class_limits_count_only_what_a_resumed_run_has_left(data_dir: Path, tmp_path: Path) -> None:
    """A student resuming a run near its end is charged the epochs still to train, not the whole schedule (the
    limit used to refuse resuming a 4-epoch run at epoch 3 when the limit was 2 epochs)."""
    reg = Registry(tmp_path / "home")
    teacher, student = Actor("teacher", "Teacher", teacher=True), Actor("person:1", "Ada")
    queue.set_limits(reg, Limits(max_epochs=20, max_minutes=0), teacher)
    config = dataclasses.replace(CONFIG, epochs=4)
    run_id = queue.submit(reg, config, student)
    assert claims.claim(reg, run_id, pid=1) is not None
    stopper = StopAfterEpoch(3)
    data = load_dataset("mnist", data_dir, val_size=200, seed=0, train_subset=300)
    train(config, [stopper], data=data, should_stop=stopper.stop, state_path=state_path(reg.checkpoint_dir, run_id))
    reg.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time())

    queue.set_limits(reg, Limits(max_epochs=2, max_minutes=0), teacher)
    resumed = resume_config(state_path(reg.checkpoint_dir, run_id))
    assert (resumed.epochs, still_to_train(resumed).epochs, still_to_train(config).epochs) == (4, 1, 4)
    with pytest.raises(OverLimit, match="epochs"):
        queue.submit(reg, config, student)  # the same 4 epochs from the start: over the limit
    new = reg.get_run(queue.resume(reg, run_id, student))  # 1 epoch left: allowed
    assert new.status == "queued" and new.config["epochs"] == 4 and new.owner == student.owner


def test_the_worker_sweep_knows_whose_resume_temporary_it_is(tmp_path: Path) -> None:
    """A half-written resume file of a running run is left alone; one of a run that has ended is removed."""
    from vitdemo.runs import worker
    from vitdemo.training.resume import _tmp_prefix

    reg = Registry(tmp_path / "home")
    running = reg.create_run(name="r", kind="cnn", dataset="mnist", config={}, status="running", worker_pid=1)
    ended = reg.create_run(name="c", kind="cnn", dataset="mnist", config={}, status="cancelled")
    reg.checkpoint_dir.mkdir(parents=True)
    names = {}
    for run_id in (running, ended):
        names[run_id] = _tmp_prefix(state_path(reg.checkpoint_dir, run_id)) + "x1y2.tmp"
        (reg.checkpoint_dir / names[run_id]).write_bytes(b"partial")
    kept = state_path(reg.checkpoint_dir, ended)
    kept.write_bytes(b"a cancelled run's last epoch: kept to resume from")
    worker.remove_leftovers(reg)
    assert sorted(p.name for p in reg.checkpoint_dir.iterdir()) == sorted([names[running], kept.name])
