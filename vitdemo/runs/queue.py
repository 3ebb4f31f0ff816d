"""The training queue on top of the store: submit, claim, cancel, delete, the class's limits and pause, and
recovery of runs whose executor lost them. Who may do what is decided here, never only by a page hiding a button:
cancel and delete take the actor (`vitdemo.runs.people.Actor`) and refuse anyone but the run's owner or the
teacher; submit refuses a student's run over the teacher's limits; a paused queue is claimed by no worker.

Every state change is a conditional update (`... WHERE id = ? AND status = 'queued'`), so two workers, or a
worker and a CLI, can never both take a run, and a result written meanwhile is never overwritten.
What executes runs is the configured executor's business (vitdemo.runs.executor): `submit` wakes it, and checks
a run against the devices it offers (their memory, their speed), not the web server's. The queue never starts a
process or reads a pid itself. Torch is imported only where a config is checked or an estimate is made.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from vitdemo import families
from vitdemo.config import ConfigError, TrainConfig
from vitdemo.runconfig import ClassicRun, PretrainRun, RunConfig, model_kind, run_name
from vitdemo.runs import admission, executor, people
from vitdemo.runs.claims import is_paused
from vitdemo.runs.executor import Device
from vitdemo.runs.limits import Limits, active_problem, class_problem, counted_epochs, limit_problems
from vitdemo.runs.people import Actor
from vitdemo.runs.schema import CLI_OWNER
from vitdemo.runs.store import PAUSED_KEY, OverLimit, Registry, Run, RunNotFound
from vitdemo.training.resume import still_to_train

LIMITS_KEY = "limits"  # settings key: the teacher's limits (vitdemo.runs.limits.Limits) as JSON


_configured: dict[str, executor.Executor] = {}
_chosen: dict[str, str] = {}  # "name": the executor this process chose itself (`use_executor`), over the environment


def executor_name() -> str:
    """$VITDEMO_EXECUTOR: 'local' (the default) or 'ray'; anything else is a ValueError that names them."""
    name = _chosen.get("name") or os.environ.get(executor.ENV_EXECUTOR, "").strip() or "local"
    if name not in executor.EXECUTORS:
        raise ValueError(f"{executor.ENV_EXECUTOR} must be one of {', '.join(executor.EXECUTORS)}; got {name!r}")
    return name


def configured_executor() -> executor.Executor:
    """This server's executor ($VITDEMO_EXECUTOR, default 'local'), one per process. Chosen here, above the
    executors: the local one imports the claims and the worker, never the queue. For 'ray' it is the cluster as
    the Ray worker published it (vitdemo.runs.cluster: this process never talks to Ray) unless the process is the
    Ray worker or a CLI that connected (`use_executor`)."""
    name = executor_name()
    if name not in _configured:
        if name == "ray":
            from vitdemo.runs.cluster import ClusterExecutor

            _configured[name] = ClusterExecutor()
        else:
            from vitdemo.runs.local import LocalExecutor

            _configured[name] = LocalExecutor()
    return _configured[name]


def use_executor(name: str, chosen: executor.Executor) -> None:
    """Make `chosen` this process's executor, as `name` (a Ray worker's or CLI's own connection to the cluster)."""
    _configured[name] = chosen
    _chosen["name"] = name


def executor_problem(store: Registry, *, queued: bool) -> str | None:
    """One sentence for the Train page when the configured executor cannot train runs now (a Ray cluster out of
    reach, or Ray not installed: vitdemo.runs.cluster.problem); None for the local executor and a healthy
    cluster."""
    if executor_name() != "ray":
        return None
    from vitdemo.runs.cluster import problem

    return problem(store, queued=queued)


def offered_devices() -> tuple[Device, ...]:
    """The devices the configured executor trains on (vitdemo.runs.executor.Device)."""
    return configured_executor().devices()


def available_devices() -> list[str]:
    """The kinds of device a run may ask for: ['cpu'] or ['cpu', 'cuda']."""
    kinds = {d.kind for d in offered_devices()}
    return ["cpu", "cuda"] if "cuda" in kinds else ["cpu"]


def resolve_device(requested: str, offered: Sequence[Device]) -> str:
    """'auto' -> 'cuda' when the executor offers a GPU, else 'cpu'; a device it does not offer is a ConfigError."""
    kinds = {d.kind for d in offered}
    if requested == "auto":
        return "cuda" if "cuda" in kinds else "cpu"
    if requested not in kinds:
        raise ConfigError(
            f"device {requested!r} was requested but this machine has no {requested.upper()} GPU; use 'auto' or 'cpu'"
            if requested == "cuda"
            else f"device {requested!r} is not one the training machine offers ({', '.join(sorted(kinds))})"
        )
    return requested


def time_estimator(offered: Sequence[Device] | None = None) -> admission.Estimator:
    """Time estimates for the executor's devices (a CPU run's speed follows the threads it gets there)."""
    cpu = executor.device_of(offered_devices() if offered is None else offered, "cpu")
    return admission.default_estimator(threads=cpu.threads if cpu is not None else None)


def _run_fields(config: RunConfig, offered: Sequence[Device]) -> dict[str, Any]:
    """Validate `config` (ConfigError for a bad config, or a device the executor does not offer) and describe it
    as run columns. The size is counted from the config: a model too big for the server is never built here (a
    classic model's size is known once it is fitted)."""
    config.validate()
    device = resolve_device(config.device, offered)
    trained = config.train if isinstance(config, PretrainRun) else config
    if isinstance(trained, TrainConfig):
        from vitdemo.training.distill import missing_teacher  # torch: imported when a run is queued, not before

        if problem := missing_teacher(trained):
            raise ConfigError(problem)
    return {
        "name": run_name(config),
        "kind": model_kind(config),
        "dataset": config.dataset,
        "config": config.to_dict(),
        "device": device,
        "num_params": None if isinstance(trained, ClassicRun) else admission.estimate_parameters(trained.model),
    }


def _memory_problem(config: RunConfig, device: str, offered: Sequence[Device]) -> str | None:
    """A run that cannot fit in the device's memory, for anyone (it would only fail, or swap the server to a halt).
    Classic runs hold the images as floats (about 200 MB): not checked."""
    from vitdemo.runs.admission import estimate
    from vitdemo.units import human_bytes

    if isinstance(config, ClassicRun):
        return None
    need = estimate(config.train if isinstance(config, PretrainRun) else config).total_bytes
    have = admission.device_memory_bytes(device, offered)
    if have is not None and need > have:
        return (
            f"This run needs about {human_bytes(need)} of memory but the server's {device} has {human_bytes(have)}: "
            "use a smaller model or batch size."
        )
    return None


def own_name(config: RunConfig) -> str:
    """The name the run was given ('' when none: the queue names it)."""
    return (config.train.name if isinstance(config, PretrainRun) else config.name).strip()


def lesson_name(config: RunConfig, actor: Actor, taken: Iterable[str]) -> str:
    """A readable name for a run given none, unique among `taken`: "Ana's CNN 1", "Ana's ViT 2", "Ana's ViT + MAE
    1"; without a person behind it (no teacher password, the command line) "CNN 3". Its settings are in the run."""
    kind = model_kind(config)
    what = families.get(kind).name if families.is_kind(kind) else kind
    if isinstance(config, PretrainRun):
        what += f" + {config.method.upper()}"
    who = "" if actor.owner in people.OWNER_LABELS else f"{' '.join(actor.name.split())}'s "
    names, n = set(taken), 1
    while f"{who}{what} {n}" in names:
        n += 1
    return f"{who}{what} {n}"


def submit(
    store: Registry,
    config: RunConfig,
    actor: Actor,
    *,
    estimator: admission.Estimator | None = None,
) -> int:
    """Validate and queue a run owned by `actor` for a worker: a training (TrainConfig), a scikit-learn
    baseline (ClassicRun) or a pretrain-then-fine-tune run (PretrainRun). Nothing is queued (and the error says why) for a
    bad config or device (ConfigError) or a run over the class limits (OverLimit, naming the limit; the teacher
    has none). Devices, memory and the estimated time are the configured executor's (`estimator`: default, one
    that probes this process's device for the local executor). Wakes the executor, so that the run is claimed."""
    if actor.blocked:
        raise people.NotAllowed("The teacher has blocked your name: ask them before you start a run.")
    offered = offered_devices()
    fields = _run_fields(config, offered)
    if not own_name(config) and actor.owner != CLI_OWNER:  # not 'cnn-mnist-w16x2-e1' for every student
        fields["name"] = lesson_name(config, actor, (r.name for r in store.list_runs()))
    problem = _memory_problem(config, fields["device"], offered)
    limits = None if actor.teacher else get_limits(store)
    if limits is not None and problem is None:
        left = still_to_train(config) if isinstance(config, TrainConfig) else config  # a resumed run: what is left
        minutes = None
        if limits.max_minutes:
            minutes = (estimator or time_estimator(offered)).estimate(left, fields["device"]).minutes
        problems = limit_problems(
            limits, num_params=fields["num_params"] or 0, epochs=counted_epochs(left), minutes=minutes
        )
        problem = problems[0] if problems else None
    if problem is not None:
        raise OverLimit(problem)
    active_limit = limits.max_active_runs if limits is not None and limits.max_active_runs else None
    class_limit = limits.max_class_runs if limits is not None and limits.max_class_runs else None
    run_id = store.create_run(
        **fields, status="queued", owner=actor.owner, active_limit=active_limit, class_limit=class_limit
    )
    if run_id is None:
        assert limits is not None
        raise OverLimit(_full_queue(store, limits, actor.owner))
    wake(store, [fields["device"]], force=True)
    return run_id


def _full_queue(store: Registry, limits: Limits, owner: str) -> str:
    """Which of the two queue limits a refused run met: the student's own, else the class's."""
    active = store.list_runs(status="queued") + store.list_runs(status="running")
    mine = sum(r.owner == owner for r in active)
    fallback = "The queue was full a moment ago: try again."  # a run ended between the insert and this count
    return active_problem(limits, mine) or class_problem(limits, len(active)) or fallback


def start_run(store: Registry, config: RunConfig, pid: int, owner: str = CLI_OWNER) -> int:
    """Validate and record a run that process `pid` trains itself (the CLI). It is created running, owned by
    `pid`, in one insert: no worker can ever claim it, so it is trained exactly once."""
    now = time.time()
    return store.create_run(
        **_run_fields(config, offered_devices()),
        status="running",
        started_at=now,
        worker_pid=pid,
        heartbeat=now,
        owner=owner,
    )


def _check_may_change(store: Registry, run_id: int, actor: Actor, verb: str) -> Run:
    run = store.get_run(run_id)
    if not actor.may_change(run):
        owner = people.owner_name(run.owner, people.owner_names(store))
        raise people.NotAllowed(f"Run #{run_id} belongs to {owner}: only they or the teacher can {verb} it.")
    return run


def request_cancel(store: Registry, run_id: int, actor: Actor) -> str:
    """Queued runs are cancelled at once; running ones are flagged and their worker stops them within about
    a second. Only the run's owner or the teacher may (NotAllowed otherwise). Returns the status after the
    request (RunNotFound for an unknown run)."""
    _check_may_change(store, run_id, actor, "cancel")
    for _ in range(5):  # the run may be claimed between the read and the conditional write: look again
        status = store.get_run(run_id).status
        if status == "queued" and store.transition(run_id, "cancelled", only_from=("queued",), finished_at=time.time()):
            return "cancelled"
        if status == "running":
            store.update_run(run_id, cancel_requested=1)
            return store.get_run(run_id).status
        if status not in ("queued", "running"):
            return status
    return store.get_run(run_id).status


def resume(
    store: Registry,
    run_id: int,
    actor: Actor,
    *,
    epochs: int | None = None,
    estimator: admission.Estimator | None = None,
) -> int:
    """Queue a new run that continues run `run_id` from its last finished epoch (`vitdemo.training.resume`: the resume
    file it saved next to its checkpoint), with its settings and, with `epochs`, a longer schedule. Only the run's
    owner or the teacher may (NotAllowed); the new run is `actor`'s and passes `submit`'s limits (OverLimit).
    ResumeError (a ValueError, with a sentence for the user) for a run still queued or running, one with no
    saved epoch, or nothing left to train. Returns the new run's id; its curves start with the earlier epochs'."""
    from vitdemo.training.resume import ResumeError, resume_config, saved_history, state_path

    run = _check_may_change(store, run_id, actor, "resume")
    if run.active:
        raise ResumeError(f"Run #{run_id} is still {run.status}: resume it once it has stopped.")
    path = state_path(store.checkpoint_dir, run_id)
    if run.baseline or not path.is_file():
        raise ResumeError(f"Run #{run_id} has no finished epoch saved, so there is nothing to continue from.")
    new_id = submit(store, resume_config(path, epochs), actor, estimator=estimator)
    for row in saved_history(path):
        store.add_epoch(new_id, row)
    return new_id


def delete_run(store: Registry, run_id: int, actor: Actor) -> None:
    """Delete a finished run and its checkpoint: only its owner or the teacher may (NotAllowed otherwise; the
    owner is checked again in the DELETE itself). Baselines and active runs are refused (ValueError)."""
    _check_may_change(store, run_id, actor, "delete")
    if not store.delete_run(run_id, owner=None if actor.teacher else actor.owner):
        raise RunNotFound(run_id)


# -- class settings ---------------------------------------------------------------------------------------
def _teacher_only(actor: Actor, what: str) -> None:
    if not actor.teacher:
        raise people.NotAllowed(f"Only the teacher can {what}.")


def get_limits(store: Registry) -> Limits:
    return Limits.from_json(store.get_setting(LIMITS_KEY))


def set_limits(store: Registry, limits: Limits, actor: Actor) -> None:
    _teacher_only(actor, "change the class limits")
    limits.validate()
    store.set_setting(LIMITS_KEY, limits.to_json())


def set_paused(store: Registry, paused: bool, actor: Actor) -> None:
    """Hold the queue (workers claim nothing; running runs go on) or let it go again, waking the executor for
    what waited: the teacher only."""
    _teacher_only(actor, "pause or resume the queue")
    store.set_setting(PAUSED_KEY, "1" if paused else "0")
    if not paused:
        wake(store, force=True)


def wake(
    store: Registry, kinds: Iterable[str] | None = None, *, force: bool = False, paused: bool | None = None
) -> list[str]:
    """Make sure the configured executor will claim the runs queued for `kinds` (default: those of every queued
    run), e.g. after a server restart left runs queued with no worker; nothing while the queue is paused
    (`paused`: as the caller has just read it, None: read it). Without `force` the executor tries at most every
    few seconds per device. Returns what it started. A start that fails is logged, never raised: the run is
    queued anyway, and the next wake tries again."""
    if is_paused(store) if paused is None else paused:
        return []
    if kinds is None:
        kinds = {r.device or "cpu" for r in store.list_runs(status="queued")}
    started: list[str] = []
    for kind in sorted(set(kinds)):
        try:
            started += configured_executor().wake(store, kind, force=force)
        except OSError as exc:
            print(f"vitdemo: no worker could be started for {kind}: {exc}", file=sys.stderr, flush=True)
    return started
