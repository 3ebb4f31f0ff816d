"""The Ray executor's figures (issue 22): runs per hour for N queued tiny runs on the local executor (a child
process per run, one at a time on the CPU) and on a local Ray instance with 2 workers; Ray's overhead per run
(submit to first step, against the local executor's child start); a sweep's wall time sequential (the local
executor) vs parallel (Ray), and how many trials the median pruner stopped. Prints one line per figure and, with
--json, writes them. Run it with nothing else training:

    VITDEMO_DATA_DIR=../shared/data VITDEMO_THREADS=1 python scripts/ray_bench.py --runs 10 --trials 12
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vitdemo.config import CNNConfig, TrainConfig  # noqa: E402
from vitdemo.runs import claims, queue, record, worker  # noqa: E402
from vitdemo.runs.executor import Executor  # noqa: E402
from vitdemo.runs.local import LocalExecutor  # noqa: E402
from vitdemo.runs.people import CLI  # noqa: E402
from vitdemo.runs.store import Registry  # noqa: E402

# a tiny run: a small CNN, 2,000 images, one epoch (seconds), then the 10,000 test images scored
TINY = TrainConfig(model=CNNConfig(width=8, depth=1), epochs=1, batch_size=128, train_subset=2000, val_size=1000,
                   device="cpu")  # fmt: skip


def _work_until(reg: Registry, executor: Executor, done: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not done.is_set():
            worker.work(reg, executor, "cpu", idle_exit_s=0.5)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def queued_runs(executor: Executor, n: int, name: str) -> dict[str, float]:
    """N tiny runs queued at once and trained by `executor`: wall time from the first submit to the last end."""
    with tempfile.TemporaryDirectory() as home:
        reg = Registry(home)
        queue.use_executor(name, executor)
        started = time.monotonic()
        ids = [queue.submit(reg, dataclasses.replace(TINY, seed=i), CLI) for i in range(n)]
        worker.work(reg, executor, "cpu", idle_exit_s=1.0)
        wall = time.monotonic() - started - 1.0  # the idle wait at the end
        runs = [reg.get_run(i) for i in ids]
        failed = [r.error for r in runs if r.status != "done"]
        if failed:
            raise SystemExit(f"runs failed: {failed[:2]}")
        return {
            "runs": n,
            "wall_s": wall,
            "runs_per_hour": 3600 * n / wall,
            "mean_train_s": sum(r.train_time_s for r in runs) / n,
        }


def first_step_s(executor: Executor, n: int, name: str) -> list[float]:
    """For N runs one after another: seconds from `start` (the run handed to the executor) to its first step."""
    out = []
    with tempfile.TemporaryDirectory() as home:
        reg = Registry(home)
        queue.use_executor(name, executor)
        for i in range(n):
            queue.submit(reg, dataclasses.replace(TINY, seed=100 + i), CLI)
            run = claims.claim_next(reg, os.getpid(), "cpu")
            started = time.monotonic()
            execution = executor.start(reg, run, "cpu")
            tending = worker.Executing(run, execution, record.Recorder(reg, run.id, run.worker_pid))
            first = None
            while True:
                for event in execution.poll():
                    tending.recorder(event)
                    step = (getattr(event, "progress", None) or {}).get("step")
                    if first is None and step:
                        first = time.monotonic() - started
                if execution.ended():
                    break
                time.sleep(0.02)
            out.append(first if first is not None else float("nan"))
    return out


def sweep(executor: Executor, trials: int, parallel: int, name: str) -> dict[str, float]:
    from vitdemo.sweeps import drive
    from vitdemo.sweeps import record as sweeps
    from vitdemo.sweeps.report import summarise
    from vitdemo.sweeps.space import Param, SweepSpec

    base = dataclasses.replace(TINY, epochs=3)
    params = (Param("lr", 1e-5, 1e-1, log=True), Param("model.width", 4, 16, integer=True))
    spec = SweepSpec(base, params, budget=trials, parallel=parallel, seed=1)
    with tempfile.TemporaryDirectory() as home:
        reg = Registry(home)
        queue.use_executor(name, executor)
        sweep_id = sweeps.create_sweep(reg, spec, owner=CLI.owner, owner_name=CLI.name, teacher=True, name="bench")
        done = threading.Event()
        thread = _work_until(reg, executor, done)
        started = time.monotonic()
        drive.drive(reg, sweep_id, poll_s=0.2)
        wall = time.monotonic() - started
        done.set()
        thread.join(30)
        summary = summarise(reg, sweeps.get_sweep(reg, sweep_id))
        return {"trials": len(summary.rows), "parallel": parallel, "wall_s": wall, "pruned": summary.pruned,
                "best": summary.best["value"] if summary.best else None}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--overhead-runs", type=int, default=4)
    p.add_argument("--ray-cpus", type=int, default=2, help="the local Ray instance's workers (CPUs)")
    p.add_argument("--parts", default="queue,overhead,sweep", help="which figures: queue, overhead, sweep")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    data_dir = os.environ.get("VITDEMO_DATA_DIR")
    from vitdemo.runs import ray_exec

    parts = set(a.parts.split(","))
    figures: dict[str, object] = {"load_before": os.getloadavg()}
    local = LocalExecutor(data_dir)
    remote = ray_exec.RayExecutor("", data_dir)

    def ray_up() -> None:  # started before its first figure, after the local executor's (a no-op once up)
        ray_exec.connect("", num_cpus=a.ray_cpus, object_store_memory=200 * 2**20)

    if "queue" in parts:
        figures["local_queue"] = queued_runs(local, a.runs, "local")
        ray_up()
        figures["ray_queue"] = queued_runs(remote, a.runs, "ray")
        for name in ("local_queue", "ray_queue"):
            print(f"{name}: {a.runs} runs in {figures[name]['wall_s']:.1f} s = "
                  f"{figures[name]['runs_per_hour']:.0f} runs/hour", flush=True)  # fmt: skip
    if "overhead" in parts:
        figures["local_first_step_s"] = first_step_s(local, a.overhead_runs, "local")
        ray_up()
        figures["ray_first_step_s"] = first_step_s(remote, a.overhead_runs, "ray")  # a new worker's first is slow
        print(f"start to first step: local {figures['local_first_step_s']}, Ray {figures['ray_first_step_s']}")
    if "sweep" in parts:
        figures["sweep_sequential_local"] = sweep(local, a.trials, 1, "local")
        print(f"sweep, sequential (local): {figures['sweep_sequential_local']}", flush=True)
        ray_up()
        figures["sweep_parallel_ray"] = sweep(remote, a.trials, 0, "ray")
        print(f"sweep, parallel (Ray): {figures['sweep_parallel_ray']}", flush=True)
    figures["load_after"] = os.getloadavg()
    print(f"load average before {figures['load_before']}, after {figures['load_after']}")
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
