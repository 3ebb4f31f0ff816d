"""A class on one server: who owns a run and who may cancel or delete it (checked in vitdemo.runs, with real
SQLite), the teacher's limits at submit, the pause, an older registry upgraded without losing runs, names shown
as plain text, CSV cells that cannot run as formulas, the time estimate, and the GPU worker logic."""

from __future__ import annotations

import csv
import html
import io
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vitdemo import families, units
from vitdemo.config import CNNConfig, LinearConfig, MLPConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.runs import admission, claims, limits, local, people, queue
from vitdemo.runs.people import CLI, Actor, NotAllowed
from vitdemo.runs.store import OverLimit, Registry, Run
from vitdemo.views import charts

TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200, device="cpu"
)
TEACHER = Actor("person:999", "Teacher", teacher=True)
HUGE = TrainConfig(model=ViTConfig(embed_dim=1024, depth=24, num_heads=16), epochs=100, device="cpu")


def fixed_rate(images_per_s: float) -> admission.Estimator:
    """An estimator whose device trains `images_per_s` images a second (a stored table, not a probe)."""
    return admission.Estimator(lambda model, batch, device: images_per_s, threads=1)


def students(reg: Registry) -> tuple[Actor, Actor]:
    return people.register(reg, "Ana").actor(), people.register(reg, "Ben").actor()


# -- owners, people and who may do what ---------------------------------------------------------------
def test_people_get_a_secret_token_and_unique_names(reg: Registry) -> None:
    ana = people.register(reg, "  Ana   Lopez ")
    assert ana.name == "Ana Lopez" and len(ana.token) >= 20
    assert people.by_token(reg, ana.token) == ana and people.by_token(reg, "guess") is None
    with pytest.raises(people.NameProblem, match="already called ana lopez"):
        people.register(reg, "ana lopez")  # any letter case
    for bad in ("", "   ", "x" * 41, "tab\there\x07"):
        with pytest.raises(people.NameProblem):
            people.register(reg, bad)
    assert people.owner_names(reg)[ana.owner] == "Ana Lopez"


def test_only_the_owner_or_the_teacher_cancels_or_deletes(reg: Registry) -> None:
    ana, ben = students(reg)
    run_id = queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    assert reg.get_run(run_id).owner == ana.owner
    with pytest.raises(NotAllowed, match=f"Run #{run_id} belongs to Ana: only they or the teacher can cancel it"):
        queue.request_cancel(reg, run_id, ben)
    assert reg.get_run(run_id).status == "queued" and not reg.get_run(run_id).cancel_requested
    assert queue.request_cancel(reg, run_id, ana) == "cancelled"

    other = queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    claims.claim(reg, other, os.getpid())
    assert queue.request_cancel(reg, other, TEACHER) == "running" and reg.get_run(other).cancel_requested
    reg.transition(other, "cancelled", only_from=("running",))

    with pytest.raises(NotAllowed, match="only they or the teacher can delete it"):
        queue.delete_run(reg, run_id, ben)
    assert reg.get_run(run_id).status == "cancelled"
    queue.delete_run(reg, run_id, ana)
    queue.delete_run(reg, other, TEACHER)
    assert reg.list_runs() == []


def test_the_store_deletes_only_the_named_owners_run(reg: Registry) -> None:
    """The owner is checked in the DELETE itself: a run that changed hands meanwhile is not deleted."""
    ana, ben = students(reg)
    run_id = reg.create_run(name="r", kind="cnn", dataset="mnist", config={}, status="done", owner=ana.owner)
    assert reg.delete_run(run_id, owner=ben.owner) is False and reg.get_run(run_id).owner == ana.owner
    assert reg.delete_run(run_id, owner=ana.owner) is True


def test_runs_nobody_started_have_their_own_owners(reg: Registry, tmp_path: Path) -> None:
    cli_run = queue.start_run(reg, TINY, os.getpid())
    assert reg.get_run(cli_run).owner == "cli"
    from vitdemo.runs.store import NewRun

    (base,) = reg.add_baselines([NewRun({"name": "b", "kind": "cnn", "dataset": "mnist", "config": {}})])
    assert reg.get_run(base).owner == "shipped"
    ana, _ = students(reg)
    with pytest.raises(NotAllowed, match="belongs to command line"):
        queue.request_cancel(reg, cli_run, ana)
    assert queue.request_cancel(reg, cli_run, CLI) == "running"


def test_only_the_teacher_changes_class_settings(reg: Registry) -> None:
    ana, _ = students(reg)
    with pytest.raises(NotAllowed, match="Only the teacher can pause"):
        queue.set_paused(reg, True, ana)
    with pytest.raises(NotAllowed, match="Only the teacher can change the class limits"):
        queue.set_limits(reg, limits.Limits(max_epochs=100), ana)
    assert not claims.is_paused(reg) and queue.get_limits(reg) == limits.Limits()
    queue.set_limits(reg, limits.Limits(max_epochs=3), TEACHER)
    assert queue.get_limits(reg).max_epochs == 3


# -- limits at submit ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("limits", "config", "message"),
    [
        (limits.Limits(max_params=1000), TINY, "over the class limit of 1,000 (largest model)"),
        (limits.Limits(max_epochs=5), TrainConfig(**{**TINY.__dict__, "epochs": 6}), "limit of 5 epochs"),
        (
            limits.Limits(max_epochs=0, max_minutes=1),
            TrainConfig(**{**TINY.__dict__, "epochs": 200}),
            "(estimated time)",
        ),
    ],
)
def test_a_students_run_over_a_limit_is_refused_at_submit(reg: Registry, limits, config, message: str) -> None:
    ana, _ = students(reg)
    queue.set_limits(reg, limits, TEACHER)
    with pytest.raises(OverLimit, match=re.escape(message)):
        queue.submit(reg, config, ana, estimator=fixed_rate(500.0))
    assert reg.list_runs() == []
    assert queue.submit(reg, config, TEACHER, estimator=fixed_rate(500.0)) > 0  # the teacher has no limits


def test_runs_in_the_queue_per_student_are_counted_in_the_insert(reg: Registry) -> None:
    ana, ben = students(reg)
    queue.set_limits(reg, limits.Limits(max_active_runs=2), TEACHER)
    first = queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    with pytest.raises(OverLimit, match="You already have 2 run"):
        queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    queue.submit(reg, TINY, ben, estimator=fixed_rate(1e4))  # another student's count is their own
    queue.request_cancel(reg, first, ana)
    queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))  # a finished run frees a place
    assert sum(r.owner == ana.owner for r in reg.list_runs() if r.active) == 2


def test_a_huge_model_is_estimated_in_days_and_refused_without_being_built(reg: Registry) -> None:
    """The issue's ViT of dim 1024, depth 24 for 100 epochs: the real estimator (it times the small reference
    model on this machine, then scales by FLOPs) says days; the queue refuses it, naming the limit."""
    estimate = admission.default_estimator().estimate(HUGE, "cpu")
    assert estimate.how == "scaled" and estimate.minutes > 3 * 24 * 60
    assert admission.estimate_parameters(HUGE.model) > 200_000_000
    ana, _ = students(reg)
    with pytest.raises(OverLimit) as err:
        queue.submit(reg, HUGE, ana)
    assert "parameters" in str(err.value) or "memory" in str(err.value)
    queue.set_limits(reg, limits.Limits(max_params=0, max_epochs=0, max_minutes=10), TEACHER)
    with pytest.raises(OverLimit, match=r"days on this server, over the class limit of 10 minutes|memory"):
        queue.submit(reg, HUGE, ana)


# -- the pause ------------------------------------------------------------------------------------------------
def test_a_paused_queue_is_claimed_by_no_worker(reg: Registry) -> None:
    run_id = queue.submit(reg, TINY, CLI)
    queue.set_paused(reg, True, TEACHER)
    assert claims.claim_next(reg, os.getpid()) is None and claims.claim(reg, run_id, os.getpid()) is None
    assert local.run_worker(reg, "cpu", idle_exit_s=0.3) == 0  # a real worker loop: it waits, claims nothing
    assert reg.get_run(run_id).status == "queued"
    queue.set_paused(reg, False, TEACHER)
    assert claims.claim_next(reg, os.getpid()).id == run_id


# -- an older registry -------------------------------------------------------------------------------------
OLD_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, kind TEXT NOT NULL, dataset TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','cancelled')),
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, device TEXT, num_params INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0, val_acc REAL, test_acc REAL, macro_f1 REAL, train_time_s REAL,
    checkpoint TEXT, error TEXT, baseline INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER, heartbeat REAL, progress TEXT
);
CREATE TABLE epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, lr REAL, images_per_s REAL, elapsed_s REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE INDEX runs_status ON runs(status);
"""


def old_registry(home: Path) -> Path:
    """A registry file as vitdemo wrote it before owners: a shipped baseline, a trained run and its epochs."""
    home.mkdir(parents=True)
    path = home / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO runs (name, kind, dataset, config, status, created_at, baseline, test_acc) "
            "VALUES ('cnn_mnist', 'cnn', 'mnist', '{}', 'done', 1, 1, 0.99)"
        )
        db.execute(
            "INSERT INTO runs (name, kind, dataset, config, status, created_at, test_acc) "
            "VALUES ('mine', 'vit', 'mnist', '{\"epochs\": 2}', 'done', 2, 0.97)"
        )
        db.executemany("INSERT INTO epochs (run_id, epoch, val_acc) VALUES (2, ?, ?)", [(1, 0.9), (2, 0.97)])
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_an_older_registry_keeps_its_runs_and_gets_owners(tmp_path: Path) -> None:
    old_registry(tmp_path / "home")
    reg = Registry(tmp_path / "home")
    runs = {r.name: r for r in reg.list_runs()}  # the first read upgrades the file
    assert set(runs) == {"cnn_mnist", "mine"}
    assert runs["cnn_mnist"].owner == "shipped" and runs["cnn_mnist"].baseline
    assert runs["mine"].owner == "earlier" and runs["mine"].test_acc == 0.97
    assert [e["val_acc"] for e in reg.epochs(runs["mine"].id)] == [0.9, 0.97]
    with sqlite3.connect(reg.db_path) as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "owner" in columns and {"people", "settings", "changes"} <= tables
    ana = people.register(reg, "Ana").actor()  # the new tables work
    with pytest.raises(NotAllowed, match="belongs to before names"):
        queue.delete_run(reg, runs["mine"].id, ana)
    before = reg.live().version
    new = queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    assert reg.live().version > before and reg.get_run(new).id == 3  # ids go on from the old runs
    assert Registry(tmp_path / "home").list_runs()[0].owner == "shipped"  # upgraded once, read again as it is


def test_a_read_only_older_registry_is_read_as_it_is(tmp_path: Path) -> None:
    path = old_registry(tmp_path / "home")
    code = (
        "import sys; from vitdemo.runs.store import Registry; from vitdemo.runs import people; "
        "r = Registry(sys.argv[1]); live = r.live(); runs = r.list_runs(); "  # the live query first: no list before it
        "print([(x.name, x.owner) for x in runs], r.outdated, people.by_token(r, 'x'), len(live.runs))"
    )
    cmd = [sys.executable, "-c", code, str(path.parent)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", *cmd]
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    except FileNotFoundError:
        pytest.skip("setpriv is not installed (util-linux)")
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[('cnn_mnist', 'shipped'), ('mine', 'earlier')] True None 0"


# -- the live query -----------------------------------------------------------------------------------------
def test_the_live_query_has_the_active_runs_names_and_a_change_counter(reg: Registry) -> None:
    ana, ben = students(reg)
    empty = reg.live(ana.owner)
    assert empty.runs == [] and not empty.paused and empty.version is not None
    a = queue.submit(reg, TINY, ana, estimator=fixed_rate(1e4))
    b = queue.submit(reg, TINY, ben, estimator=fixed_rate(1e4))
    done = reg.create_run(name="old", kind="cnn", dataset="mnist", config={}, status="done", owner=ana.owner)
    live = reg.live(ana.owner)
    assert [r.id for r in live.runs] == [a, b, done] and [r.id for r in live.active] == [a, b]
    assert live.names == {ana.owner: "Ana", ben.owner: "Ben"} and live.version > empty.version
    assert [r.id for r in reg.live(ben.owner).runs] == [a, b]  # Ben's latest ended run: none
    assert reg.live(ana.owner).version == live.version  # reads change nothing
    reg.update_run(a, progress={"step": 1})
    assert reg.live(ana.owner).version > live.version
    queue.set_paused(reg, True, TEACHER)
    assert reg.live(ana.owner).paused
    frame = charts.queue_frame(live.active, live.names)
    assert list(frame["by"]) == ["Ana", "Ben"] and list(frame["place"]) == ["1", "2"]


# -- plain names and safe CSV --------------------------------------------------------------------------------
NASTY = "[click](http://evil.example) ![x](http://t.example/p.png) **bold** <b>hi</b> $x^2$ :red[r] # www.e.com"


def test_names_are_literal_in_markdown() -> None:
    text = charts.literal_markdown(NASTY)
    assert html.unescape(text) == NASTY  # the same characters on the page...
    for ch in "[]()!*<>$:#_`\\|~.":
        assert ch not in text.replace("&#", "").replace(";", "")  # ...none of them left to read as syntax
    assert charts.literal_markdown("Ana\nLopez") == "Ana Lopez"
    assert charts.plotly_text("<a href='x'>a</a>") == "&lt;a href='x'&gt;a&lt;/a&gt;"
    fig = charts.overlay_figure({"<a href='http://e'>x</a>": [{"epoch": 1, "val_acc": 0.5}]})
    assert fig.data[0].name == "&lt;a href='http://e'&gt;x&lt;/a&gt;"


def test_csv_cells_that_would_run_as_formulas_are_quoted(reg: Registry) -> None:
    names = ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"]
    for name in names:
        reg.create_run(name=name, kind="vit", dataset="mnist", config={}, status="done", test_acc=0.5, val_acc=-0.1)
    frame = charts.leaderboard_frame(reg.list_runs(), {"earlier": "=HYPERLINK(1)"})
    rows = list(csv.DictReader(io.StringIO(charts.leaderboard_csv(frame).decode(), newline="")))
    assert sorted(r["name"] for r in rows) == sorted(
        ["'=cmd|' /C calc'!A0", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b"]
    )
    assert {r["by"] for r in rows} == {"'=HYPERLINK(1)"}
    assert {r["test accuracy"] for r in rows} == {"0.5"}  # numbers are numbers
    assert units.csv_cell(-2.5) == -2.5 and units.csv_cell(None) is None


# -- time estimates -----------------------------------------------------------------------------------------
def test_the_estimator_probes_each_model_once_and_scales_big_ones() -> None:
    calls: list[tuple] = []

    def probe(model, batch, device) -> float:
        calls.append((model, batch, device))
        return 1000.0 if model == families.get(model.kind).reference else 400.0

    est = admission.Estimator(probe, threads=1)
    small = TrainConfig(model=CNNConfig(width=8, depth=1), epochs=2, train_subset=1000, val_size=100)
    first = est.estimate(small, "cpu")
    assert first.how == "measured" and first.images_per_s == 400.0
    assert est.estimate(small, "cpu") == first and len(calls) == 2  # the reference and the model, once each
    assert first.seconds == pytest.approx(admission.STARTUP_S + 1000 * 2 / 400 + (100 * 3 + 10_000) / 1200)
    big = est.estimate(HUGE, "cpu")
    ref = families.get("vit").reference
    expected = 1000.0 * admission.train_flops_per_image(ref) / admission.train_flops_per_image(HUGE.model)
    assert big.how == "scaled" and big.images_per_s == pytest.approx(expected) and len(calls) == 3
    assert admission.Estimator(probe, threads=4).estimate(small, "cpu").images_per_s == pytest.approx(
        400 * 4**admission.THREAD_SCALING
    )


def test_the_real_probe_times_training_steps() -> None:
    rate = admission.probe_throughput(CNNConfig(width=4, depth=1), 16, "cpu")
    assert 10 < rate < 1e7


def test_limits_round_trip_and_bad_values_fall_back_to_defaults() -> None:
    chosen = limits.Limits(max_active_runs=1, max_params=5, max_epochs=2, max_minutes=0.5)
    assert limits.Limits.from_json(chosen.to_json()) == chosen
    assert limits.Limits.from_json('{"max_epochs": -1}') == limits.Limits()
    assert limits.Limits.from_json("not json") == limits.Limits()
    assert units.format_minutes(0.5) == "30 seconds" and units.format_minutes(66_000) == "45.8 days"


# -- GPUs and how many runs share a device ----------------------------------------------------------------
def test_devices_and_runs_per_device() -> None:
    assert local.runs_per_device("cpu", {"VITDEMO_RUNS_PER_GPU": "4"}) == 1  # the CPU: always one at a time
    assert local.runs_per_device("cuda:0", {}) == local.DEFAULT_RUNS_PER_GPU
    assert local.runs_per_device("cuda:1", {"VITDEMO_RUNS_PER_GPU": "3"}) == 3
    with pytest.raises(ValueError, match="VITDEMO_RUNS_PER_GPU"):
        local.runs_per_device("cuda:0", {"VITDEMO_RUNS_PER_GPU": "0"})
    assert local.worker_devices("cpu", 4) == ["cpu"]
    assert local.worker_devices("cuda", 3) == ["cuda:0", "cuda:1", "cuda:2"]  # every visible GPU
    assert claims.queue_device("cuda:2") == "cuda" and claims.queue_device("cpu") == "cpu"
    assert local.child_env("cuda:1", {"PATH": "/bin"})["CUDA_VISIBLE_DEVICES"] == "1"
    assert local.child_env("cuda:1", {"CUDA_VISIBLE_DEVICES": "4,6"})["CUDA_VISIBLE_DEVICES"] == "6"
    assert "CUDA_VISIBLE_DEVICES" not in local.child_env("cpu", {"PATH": "/bin"})


def test_a_gpu_worker_claims_cuda_runs_and_trains_several_at_once(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three CUDA runs, a 'cuda:1' worker with two slots: two children at once (real processes that stand in for
    training: no GPU here), each seeing only GPU 1; the third run waits for a free slot."""
    ids = [reg.create_run(name=f"g{i}", kind="cnn", dataset="mnist", config={}, device="cuda") for i in range(3)]
    monkeypatch.setenv("VITDEMO_RUNS_PER_GPU", "2")
    started: list[tuple[int, float, str]] = []

    real_start = local.LocalExecutor.start

    def start(self, registry: Registry, run: Run, device: str):
        started.append((run.id, time.monotonic(), local.child_env(device)["CUDA_VISIBLE_DEVICES"]))
        return real_start(self, registry, run, device)

    def command(registry: Registry, run_id: int, data_dir=None) -> list[str]:
        """A child that 'trains' for a second, writes its checkpoint and says so, as a real one does."""
        code = (
            "import sys, time; from pathlib import Path; from vitdemo.runs import events; time.sleep(1.0); "
            "folder, name = Path(sys.argv[1]), sys.argv[2]; folder.mkdir(parents=True, exist_ok=True); "
            "(folder / name).write_bytes(b'weights'); "
            "print(events.encode(events.Result({'test_acc': 0.5}, events.RunFile(name))), flush=True)"
        )
        return [sys.executable, "-c", code, str(registry.checkpoint_dir), f"run-{run_id}.safetensors"]

    monkeypatch.setattr(local.LocalExecutor, "start", start)
    monkeypatch.setattr(local, "child_command", command)
    assert local.run_worker(reg, "cuda:1", idle_exit_s=0.3) == 3
    assert [s[0] for s in started] == ids and {s[2] for s in started} == {"1"}
    assert started[1][1] - started[0][1] < 0.9  # the second started while the first still ran
    assert started[2][1] - started[0][1] >= 0.9  # the third waited for a slot
    assert all(reg.get_run(i).status == "done" for i in ids)


@pytest.mark.parametrize(
    "model",
    [LinearConfig(), MLPConfig(hidden=(64, 32)), TransferConfig(arch="alexnet", pretrained=False)],
    ids=["linear", "mlp", "transfer"],
)
def test_every_family_gets_a_size_and_a_time_estimate(model) -> None:
    """The queue sizes every run before it is accepted: the new families are counted too (a UI- or CLI-queued MLP
    used to fail on a missing 'depth')."""
    from vitdemo.models import build_model, count_parameters

    assert admission.estimate_parameters(model) == count_parameters(build_model(model))
    assert admission.forward_macs(model) >= admission.estimate_parameters(model)
