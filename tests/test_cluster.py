"""The Train page with the Ray executor configured, as the web server sees it (it never talks to Ray): a cluster the
worker cannot reach is one sentence and the queued run waits; where a run trains (node, device) is shown; without
Ray the page says what to install. And the sweep view: its plots, its trials, "use the best settings"."""

from __future__ import annotations

import dataclasses
import html
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from apptest import open_page, texts

from vitdemo import families
from vitdemo.config import LinearConfig, TrainConfig
from vitdemo.runs import cluster, queue
from vitdemo.runs.people import CLI
from vitdemo.runs.store import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = TrainConfig(model=LinearConfig(), epochs=2, batch_size=100, train_subset=300, val_size=200, device="cpu")


def shown(at: Any, kind: str) -> list[str]:
    """What the page shows, as read (literal text is escaped for markdown)."""
    return [html.unescape(t) for t in texts(at, kind)]


@pytest.fixture
def on_ray_env(shipped_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The app's environment with VITDEMO_EXECUTOR=ray and a cluster address where nobody listens."""
    reg = shipped_env(tmp_path / "no-shipped")
    monkeypatch.setenv("VITDEMO_EXECUTOR", "ray")
    monkeypatch.setenv("VITDEMO_RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(queue, "_configured", {})
    return reg


def test_an_unreachable_cluster_is_a_sentence_on_the_train_page_and_queued_runs_wait(
    on_ray_env: Registry, monkeypatch: pytest.MonkeyPatch, worker_starts: list
) -> None:
    pytest.importorskip("ray", reason="the Ray worker needs Ray: pip install -r requirements-ray.txt")
    run_id = queue.submit(on_ray_env, TINY, CLI)
    assert worker_starts  # the queue woke the Ray worker (here only recorded): the page itself starts nothing
    worker = subprocess.Popen(  # the Ray worker, which keeps trying while a run is queued
        [sys.executable, "-m", "vitdemo", "worker", "--home", str(on_ray_env.home), "--idle-exit", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT, env={**os.environ, "VITDEMO_THREADS": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while cluster.read_state(on_ray_env) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # a while longer: it claims nothing meanwhile
        assert worker.poll() is None  # still waiting for the cluster, not crashed
    finally:
        worker.terminate()
        worker.wait(10)
    state = cluster.read_state(on_ray_env)
    assert state is not None and not state.connected and "127.0.0.1:1" in state.message
    assert on_ray_env.get_run(run_id).status == "queued"  # it waits for the cluster

    running = on_ray_env.create_run(
        name="elsewhere", kind="linear", dataset="mnist", config=TINY.to_dict(), status="running", device="cpu",
        worker_pid=os.getpid(), heartbeat=time.time(),
        progress={"step": 1, "total_steps": 6, "where": "node 10.0.0.7 · GPU 0"},
    )  # fmt: skip
    at = open_page("train", expert=True)
    assert any(
        "The training cluster cannot be reached (no Ray cluster answers at 127.0.0.1:1" in w
        for w in shown(at, "warning")
    )
    frame = next(d.value for d in at.dataframe if "place" in d.value.columns)
    assert "node 10.0.0.7 · GPU 0" in list(frame["device"])  # the class queue says where each run trains
    assert any("Ray cluster (not connected yet)" in c for c in shown(at, "caption"))
    del running

    monkeypatch.setattr(cluster, "ray_installed", lambda: False)  # a server without the extra step
    at.run()
    assert any("Ray is not installed on this server: install it with `pip install -r requirements-ray.txt`" in w
               for w in shown(at, "warning"))  # fmt: skip


def test_the_sweep_view_plots_the_trials_and_hands_over_the_best_settings(
    shipped_env: Any, tmp_path: Path, worker_starts: list
) -> None:
    pytest.importorskip("optuna", reason="sweeps need Optuna: pip install -r requirements-ray.txt")
    from vitdemo.sweeps import record
    from vitdemo.sweeps.space import Param, SweepSpec

    reg = shipped_env(tmp_path / "no-shipped")
    spec = SweepSpec(TINY, (Param("lr", 1e-4, 1e-1, log=True), Param("epochs", 1, 4, integer=True)), budget=4)
    sweep_id = record.create_sweep(reg, spec, owner=CLI.owner, owner_name=CLI.name, teacher=True, name="by hand")
    start, ids = time.time(), []
    for n, (lr, epochs, acc) in enumerate([(1e-3, 2, 0.8), (3e-2, 3, 0.9), (1e-4, 1, 0.3), (5e-2, 4, 0.85)]):
        config = dataclasses.replace(TINY, lr=lr, epochs=epochs)
        run_id = reg.create_run(name=f"trial {n}", kind="linear", dataset="mnist", config=config.to_dict(),
                                status="done", device="cpu", val_acc=acc, test_acc=acc, train_time_s=2.0,
                                finished_at=start + n, owner=CLI.owner)  # fmt: skip
        record.add_trial(reg, sweep_id, run_id, n, {"lr": lr, "epochs": epochs})
        ids.append(run_id)
    best = ids[1]  # 90%
    at = open_page("train", expert=True)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"parcoords"' in s for s in specs) and any('"bar"' in s for s in specs)  # settings, importance
    assert any('"scatter"' in s for s in specs)  # the best so far against time
    assert any("4 of 4 trials asked, 4 done, 0 stopped early" in c for c in shown(at, "caption"))
    at.button(key="sw_use_best").click().run()
    assert any(f"settings of run #{best} (the sweep's best)" in i for i in shown(at, "info"))
    assert at.session_state["tf_lr"] == pytest.approx(3e-2) and at.session_state["tf_epochs"] == 3


def test_a_sweeps_settings_are_read_from_one_line_each_and_bad_ones_are_a_sentence() -> None:
    from vitdemo.config import ConfigError, ViTConfig
    from vitdemo.sweeps.space import Param, SweepSpec, apply, parse_param

    assert parse_param("lr=1e-4..1e-2:log") == Param("lr", 1e-4, 1e-2, log=True)
    assert parse_param("model.depth=2..6") == Param("model.depth", 2.0, 6.0, integer=True)
    assert parse_param("model.patch_size=4,7") == Param("model.patch_size", choices=(4, 7))
    vit = TrainConfig(model=ViTConfig())
    tried = apply(vit, {"lr": 0.01, "model.depth": 3.0, "epochs": 2.4})
    assert tried.lr == 0.01 and tried.model.depth == 3 and tried.epochs == 2 and isinstance(tried.epochs, int)
    for bad, says in (("lr", "NAME=LOW..HIGH"), ("lr=a..b", "must be numbers"), ("lr=0..1:log", "above 0"),
                      ("model.width=1..4", "no setting 'width'"), ("device=1,2", "cannot vary device")):  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            SweepSpec(vit, (parse_param(bad),)).validate()


def test_the_clusters_devices_follow_its_alive_nodes() -> None:
    ray_exec = pytest.importorskip("vitdemo.runs.ray_exec")
    gb = 2**30
    nodes = [
        {"Alive": True, "Resources": {"CPU": 16.0, "memory": 64 * gb}},
        {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 2.0, "memory": 32 * gb, "accelerator_type:H100": 1.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0, "memory": 512 * gb}},  # a dead node offers nothing
    ]
    cpu, gpu = ray_exec.cluster_devices(nodes)
    assert (cpu.kind, cpu.runs_at_once, cpu.memory_bytes, cpu.threads) == ("cpu", 24, 32 * gb, 1)
    assert cpu.label == "Ray cluster: 2 nodes, 24 CPUs"
    assert (gpu.kind, gpu.runs_at_once, gpu.label) == ("cuda", 8, "2 GPUs (H100)")  # a quarter of a GPU a run
    assert ray_exec.cluster_devices(nodes[2:]) == ()  # nothing alive: no room, queued runs wait


def test_only_its_owner_or_the_teacher_stops_a_sweep_and_a_blocked_name_starts_none(reg: Registry) -> None:
    pytest.importorskip("optuna", reason="sweeps need Optuna: pip install -r requirements-ray.txt")
    from vitdemo.runs.people import Actor, NotAllowed
    from vitdemo.sweeps import drive, record
    from vitdemo.sweeps.space import Param, SweepSpec

    spec = SweepSpec(TINY, (Param("lr", 1e-4, 1e-1, log=True),), budget=3)
    blocked = Actor("person:9", "Bo", blocked=True)
    with pytest.raises(NotAllowed, match="blocked"):
        drive.launch(reg, spec, blocked)  # refused before anything is recorded or started
    assert record.list_sweeps(reg) == []
    sweep_id = record.create_sweep(reg, spec, owner="person:1", owner_name="Ana", teacher=False, name="Ana's")
    with pytest.raises(NotAllowed, match="owner or the teacher"):
        drive.stop(reg, sweep_id, Actor("person:2", "Ben"))
    drive.stop(reg, sweep_id, Actor("person:1", "Ana"))
    assert record.get_sweep(reg, sweep_id).stop_requested
    assert drive.advance(reg, sweep_id, parallel=1).over  # stopped before any trial: nothing is queued


@pytest.mark.parametrize("fam", families.families(), ids=lambda f: f.kind)
def test_every_family_asks_a_cluster_for_a_sensible_share(fam: families.Family) -> None:
    assert fam.ray_cpus >= 1 and 0 < fam.gpu_share <= 1


def test_the_queue_checks_runs_against_the_devices_the_cluster_published(
    on_ray_env: Registry, worker_starts: list
) -> None:
    """The web server never asks Ray: admission, estimates and the device list come from what the worker
    published (here a cluster with a 1 GB GPU and 8 CPU slots)."""
    from vitdemo.config import ConfigError, ViTConfig
    from vitdemo.runs.executor import Device
    from vitdemo.runs.store import OverLimit

    cpu = Device("cpu", "cpu", "Ray cluster: 2 nodes, 8 CPUs", 64 * 2**30, threads=1, runs_at_once=8)
    gpu = Device("cuda", "cuda", "1 GPUs (T4)", 2**30, runs_at_once=4)
    cluster.publish(on_ray_env, cluster.ClusterState(True, devices=(cpu, gpu), nodes=2))
    assert queue.available_devices() == ["cpu", "cuda"] and queue.configured_executor().capacity("cpu") == 8
    assert queue.time_estimator().threads == 1  # a run's speed there: one core each
    big = TrainConfig(model=ViTConfig(embed_dim=1024, depth=8, num_heads=8), device="cuda")
    with pytest.raises(OverLimit, match="the server's cuda has 1.0 GB"):
        queue.submit(on_ray_env, big, CLI)
    cluster.publish(on_ray_env, cluster.ClusterState(False, "connection refused"))
    with pytest.raises(ConfigError, match="no CUDA"):  # out of reach: only the CPU it surely has
        queue.submit(on_ray_env, dataclasses.replace(TINY, device="cuda"), CLI)


def test_a_driver_step_prunes_a_running_trial_below_the_median_and_fills_the_free_slot(reg: Registry) -> None:
    """One step, on runs as the registry holds them: two finished trials reached 90% at epoch 1, a running one is
    at 10% there: it is stopped (its cancel requested) and marked pruned, and a new trial is queued in its place."""
    pytest.importorskip("optuna", reason="sweeps need Optuna: pip install -r requirements-ray.txt")
    from vitdemo.sweeps import drive, record
    from vitdemo.sweeps.space import Param, SweepSpec

    spec = SweepSpec(TINY, (Param("lr", 1e-6, 1e-1, log=True),), budget=4, parallel=1)
    sweep_id = record.create_sweep(reg, spec, owner=CLI.owner, owner_name=CLI.name, teacher=True, name="s")
    for n, (status, acc) in enumerate([("done", 0.9), ("done", 0.92), ("running", 0.1)]):
        run_id = reg.create_run(name=f"t{n}", kind="linear", dataset="mnist", config=TINY.to_dict(), status=status,
                                device="cpu", val_acc=acc if status == "done" else None, train_time_s=1.0,
                                owner=CLI.owner, worker_pid=os.getpid(), heartbeat=time.time())  # fmt: skip
        reg.add_epoch(run_id, {"epoch": 1, "val_acc": acc})
        record.add_trial(reg, sweep_id, run_id, n, {"lr": 1e-2 if acc > 0.5 else 1e-6})
    step = drive.advance(reg, sweep_id)
    assert step.pruned == (run_id,) and reg.get_run(run_id).cancel_requested and not step.over
    assert step.queued == ()  # its slot frees once the worker has stopped it
    reg.transition(run_id, "cancelled", only_from=("running",))
    step = drive.advance(reg, sweep_id)
    assert len(step.queued) == 1 and reg.get_run(step.queued[0]).status == "queued"  # the 4th and last trial
    assert [t.pruned for t in drive.load_trials(reg, sweep_id)] == [False, False, True, False]


def test_without_ray_and_optuna_the_train_page_works_and_says_what_to_install(
    on_ray_env: Registry, monkeypatch: pytest.MonkeyPatch, worker_starts: list
) -> None:
    """The extra step not taken: neither can be imported (as on a laptop that installed requirements.txt only)."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, find_spec finds nothing
    monkeypatch.setitem(sys.modules, "optuna", None)
    queue.submit(on_ray_env, TINY, CLI)  # a run is queued as today; it waits for a Ray worker
    assert worker_starts == []  # none is started: it could not import Ray
    at = open_page("train", expert=True)
    assert any("Ray is not installed on this server: install it with `pip install -r requirements-ray.txt`" in w
               for w in shown(at, "warning"))  # fmt: skip
    assert any(
        "Sweeps need Optuna: install it with `pip install -r requirements-ray.txt`" in i for i in shown(at, "info")
    )
