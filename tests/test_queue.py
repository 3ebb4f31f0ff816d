"""The queue: submit, claims that never take a run twice, cancel, and runs whose worker died."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import subprocess
import sys
import time

import pytest
import torch
from seed import queued_run

from vitdemo.config import CNNConfig, ConfigError, LinearConfig, MLPConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.models import build_model, count_parameters
from vitdemo.runconfig import ClassicConfig, ClassicRun, PretrainConfig, PretrainRun, run_config_from_dict
from vitdemo.runs import admission, claims, limits, queue
from vitdemo.runs.local import LocalExecutor
from vitdemo.runs.people import CLI, Actor
from vitdemo.runs.store import OverLimit, Registry, RunNotFound
from vitdemo.training.recipes import finetune_config

TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200, device="cpu"
)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_invalid_config_is_rejected_before_it_is_queued(reg: Registry) -> None:
    with pytest.raises(ConfigError, match="divisible"):
        queue.submit(reg, TrainConfig(model=ViTConfig(embed_dim=30, num_heads=4)), CLI)
    with pytest.raises(ConfigError, match="epochs"):
        queue.submit(reg, TrainConfig(epochs=0), CLI)
    assert reg.list_runs() == []


def test_cuda_without_a_gpu_is_rejected(reg: Registry) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert queue.available_devices() == ["cpu"]
    with pytest.raises(ConfigError, match="no CUDA"):
        queue.submit(reg, TrainConfig(device="cuda"), CLI)
    assert reg.list_runs() == []


def test_submit_queues_with_the_resolved_device_and_size(reg: Registry) -> None:
    run = reg.get_run(queue.submit(reg, TINY, CLI))
    assert run.status == "queued" and run.device == "cpu" and run.worker_pid is None
    assert run.num_params == count_parameters(build_model(TINY.model))
    assert run.name == "cnn-mnist-w4x1-e1" and TrainConfig.from_dict(run.config) == TINY
    named = reg.get_run(queue.submit(reg, TrainConfig(**{**TINY.__dict__, "name": "mine"}), CLI))
    assert named.name == "mine"


def test_start_run_is_created_running_and_never_claimable(reg: Registry) -> None:
    """The CLI's run: one insert makes it running and its own, so a worker polling meanwhile cannot take it."""
    run = reg.get_run(queue.start_run(reg, TINY, pid=4242))
    assert run.status == "running" and run.worker_pid == 4242 and run.started_at and run.heartbeat
    assert claims.claim_next(reg, 1, "cpu") is None and claims.claim(reg, run.id, 1) is None
    assert reg.get_run(run.id).worker_pid == 4242


def test_claim_by_id_is_conditional(reg: Registry) -> None:
    run_id = queued_run(reg, device="cpu")
    run = claims.claim(reg, run_id, 42)
    assert run is not None and run.status == "running" and run.worker_pid == 42
    assert claims.claim(reg, run_id, 43) is None  # already taken: the second claimer gets nothing
    assert reg.get_run(run_id).worker_pid == 42
    assert claims.claim(reg, 999, 43) is None


def _claim_all(home: str, barrier, out) -> None:
    """In a child process: claim queued runs until none is left; report the ids."""
    reg = Registry(home)
    barrier.wait()
    claimed = []
    while (run := claims.claim_next(reg, os.getpid())) is not None:
        claimed.append(run.id)
    out.put(claimed)


def test_concurrent_claims_never_take_a_run_twice(reg: Registry) -> None:
    ids = {queued_run(reg, f"r{i}", device="cpu") for i in range(40)}
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(reg.home), barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    first, second = map(set, claimed)
    assert not first & second
    assert first | second == ids
    assert len(claimed[0]) + len(claimed[1]) == len(ids)
    runs = reg.list_runs()
    assert all(r.status == "running" and r.worker_pid in {p.pid for p in procs} for r in runs)


def test_claim_next_takes_the_oldest_run_of_its_device(reg: Registry) -> None:
    gpu = queued_run(reg, "gpu", device="cuda")
    cpu1, cpu2 = queued_run(reg, "cpu1", device="cpu"), queued_run(reg, "cpu2", device="cpu")
    run = claims.claim_next(reg, 42, "cpu")
    assert run.id == cpu1 and run.status == "running" and run.worker_pid == 42 and run.heartbeat is not None
    assert claims.claim_next(reg, 42, "cuda").id == gpu
    assert claims.claim_next(reg, 42, "cuda") is None
    assert claims.claim_next(reg, 42).id == cpu2


def test_request_cancel(reg: Registry) -> None:
    queued, running, done = queued_run(reg), queued_run(reg, status="running"), queued_run(reg, status="done")
    assert queue.request_cancel(reg, queued, CLI) == "cancelled"
    assert reg.get_run(queued).status == "cancelled" and reg.get_run(queued).finished_at is not None
    assert queue.request_cancel(reg, running, CLI) == "running" and reg.cancel_requested(running)
    assert queue.request_cancel(reg, done, CLI) == "done" and not reg.cancel_requested(done)
    with pytest.raises(RunNotFound):
        queue.request_cancel(reg, 12345, CLI)


def test_a_queued_run_is_cancelled_at_once(reg: Registry) -> None:
    run_id = queue.submit(reg, TINY, CLI)
    assert queue.request_cancel(reg, run_id, CLI) == "cancelled"
    assert claims.claim_next(reg, os.getpid(), "cpu") is None


def test_fail_orphans_marks_runs_of_dead_or_silent_workers(reg: Registry) -> None:
    now = time.time()
    dead = queued_run(reg, "dead", status="running", worker_pid=_dead_pid(), heartbeat=now)
    alive = queued_run(reg, "alive", status="running", worker_pid=os.getpid(), heartbeat=now)
    silent = queued_run(reg, "silent", status="running", worker_pid=os.getpid(), heartbeat=now - 1000)
    done = queued_run(reg, "done", status="done", worker_pid=_dead_pid())
    assert claims.fail_orphans(reg, stale_s=300) == [silent]  # the heartbeat alone: a dead pid is not read
    alive_here = LocalExecutor().run_alive  # the executor knows its processes: a dead worker's run fails at once
    assert claims.fail_orphans(reg, alive=alive_here, stale_s=300) == [dead]
    assert reg.get_run(dead).status == "failed" and "stopped unexpectedly" in reg.get_run(dead).error
    assert reg.get_run(silent).status == "failed" and "no progress" in reg.get_run(silent).error
    assert reg.get_run(alive).status == "running" and reg.get_run(done).status == "done"
    assert claims.fail_orphans(reg, alive=alive_here) == []


def test_fail_orphans_keeps_a_result_written_meanwhile(reg: Registry) -> None:
    """The worker finishes the run and exits between fail_orphans' listing and its check: the run stays done."""
    run_id = queued_run(reg, status="running", worker_pid=12345, heartbeat=time.time())

    def worker_finishes_then_exits(run) -> bool:
        reg.update_run(run_id, status="done", test_acc=0.9)
        return False

    assert claims.fail_orphans(reg, alive=worker_finishes_then_exits) == []
    run = reg.get_run(run_id)
    assert run.status == "done" and run.test_acc == 0.9 and run.error is None


def test_fail_orphans_spares_a_run_that_beat_since_it_was_listed(reg: Registry) -> None:
    """The sweep lists a run whose heartbeat looks stale; its executor's heartbeat thread beats before the sweep's
    update: the verdict is part of the conditional update, so the run stays running."""
    run_id = queued_run(reg, status="running", worker_pid=os.getpid(), heartbeat=time.time() - 1000)

    def beats_meanwhile(run) -> None:
        reg.beat([run_id])
        return None  # the executor cannot tell: the heartbeat decides

    assert claims.fail_orphans(reg, alive=beats_meanwhile, stale_s=300) == []
    assert reg.get_run(run_id).status == "running"


def test_fail_orphans_only_reads_when_nothing_is_orphaned(reg: Registry) -> None:
    queued_run(reg, "alive", status="running", worker_pid=os.getpid(), heartbeat=time.time())
    before = reg.db_path.stat().st_mtime_ns, reg.db_path.read_bytes()
    assert claims.fail_orphans(reg, alive=LocalExecutor().run_alive) == []
    assert (reg.db_path.stat().st_mtime_ns, reg.db_path.read_bytes()) == before


# -- every family through the queue: sizes, time estimates and the class limits ------------------------------
STUDENT = Actor("person:1", "Ana")


def fixed_speed(model, batch, device) -> float:
    return 1000.0  # training images per second, whatever the model: no probe in these tests


def test_classic_and_pretrain_runs_are_queued_with_their_kind_and_name(reg: Registry) -> None:
    classic = ClassicRun(model=ClassicConfig(kind="svm"), dataset="fashion")
    run = reg.get_run(queue.submit(reg, classic, CLI))
    assert run.kind == "svm" and run.dataset == "fashion" and run.device == "cpu" and run.num_params is None
    assert run.name == "svm-fashion-pca50-c10" and run_config_from_dict(run.config) == classic
    pre = PretrainRun("simclr", PretrainConfig(epochs=1), dataclasses.replace(TINY, labels=100))
    run = reg.get_run(queue.submit(reg, pre, CLI))
    assert run.kind == "cnn" and run.num_params == count_parameters(build_model(TINY.model))
    assert run.name == "cnn-mnist-w4x1-e1-l100-simclr" and run_config_from_dict(run.config) == pre
    with pytest.raises(ConfigError, match="init must be empty"):
        queue.submit(reg, dataclasses.replace(pre, train=dataclasses.replace(pre.train, init="x.safetensors")), CLI)
    with pytest.raises(ConfigError, match="simclr pretrains a cnn"):
        queue.submit(reg, PretrainRun("simclr", PretrainConfig(), TrainConfig()), CLI)


@pytest.mark.parametrize(
    "model",
    [LinearConfig(), MLPConfig(hidden=(32,)), TransferConfig(arch="alexnet", image_px=64, finetune="head")],
    ids=["linear", "mlp", "transfer"],
)
def test_every_kind_gets_a_time_estimate(model) -> None:
    """The queue estimates every run before a student's is accepted; a linear model, an MLP or a transfer model
    used to fail there (KeyError: no reference model of their kind)."""
    est = admission.Estimator(fixed_speed, threads=1).estimate(TrainConfig(model=model, epochs=2), "cpu")
    assert est.seconds > admission.STARTUP_S and est.how in ("measured", "scaled")


def test_a_lean_cnn_too_big_to_probe_is_scaled_from_a_lean_reference() -> None:
    """A lean CNN does more per multiply-add than the double design; scaled from the double reference's rate its
    estimate came out several times too short."""
    probed: list[CNNConfig] = []

    def probe(model, batch: int, device: str) -> float:
        probed.append(model)
        return 1000.0

    big = TrainConfig(model=CNNConfig(width=256, depth=3, design="lean"), epochs=1)
    rate, how = admission.Estimator(probe, threads=1).images_per_s(big, "cpu")
    assert how == "scaled" and probed[0] == CNNConfig(width=16, depth=2, design="lean")


def test_classic_and_pretraining_times_come_from_the_measured_constants() -> None:
    est = admission.Estimator(fixed_speed, threads=1)
    svm = est.estimate(ClassicRun(model=ClassicConfig(kind="svm"), train_subset=11_000), "cpu")
    assert svm.how == "constant" and svm.seconds == pytest.approx(
        admission.STARTUP_S + admission.CLASSIC_FULL_S["svm"] / 5
    )
    fine = dataclasses.replace(TINY, labels=100, train_subset=0, val_size=1000)
    pre = PretrainRun("simclr", PretrainConfig(epochs=2), fine)
    added = est.estimate(pre, "cpu").seconds - est.estimate(fine, "cpu").seconds
    assert added == pytest.approx(59_000 * 2 / (1000 * admission.PRETRAIN_SPEED["simclr"]))  # all the images


def test_a_label_budget_counts_its_epochs_as_passes_over_the_training_set(reg: Registry) -> None:
    """40 epochs over 100 labels are 4,000 images, under one pass over the 55,000: a student's fine-tune is
    within the class's epoch limit (it was refused before), and its time is that of 4,000 images."""
    few = finetune_config(CNNConfig(width=4, depth=1), labels=100, device="cpu")
    assert few.epochs == 40 and limits.counted_epochs(few) == 1
    assert admission.train_images(few) == 100
    run_id = queue.submit(reg, few, STUDENT, estimator=admission.Estimator(fixed_speed, threads=1))
    assert reg.get_run(run_id).owner == STUDENT.owner
    top = limits.Limits().max_epochs  # the default class limit
    with pytest.raises(OverLimit, match=f"{top + 1} epochs is over the class limit of {top}"):
        queue.submit(
            reg, dataclasses.replace(TINY, epochs=top + 1), STUDENT, estimator=admission.Estimator(fixed_speed)
        )
    pre = PretrainRun("simclr", PretrainConfig(epochs=3), few)
    assert limits.counted_epochs(pre) == 4 and limits.counted_epochs(ClassicRun()) == 1
