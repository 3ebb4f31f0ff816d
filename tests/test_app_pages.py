"""The Train, Evaluate and Leaderboard pages under Streamlit's AppTest: the whole app (navigation and the
shared sidebar) runs in this process against a private registry; no worker starts (conftest's worker_starts)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from apptest import cell_counts, matrix_tables, open_as, open_page, texts, train_shipped_cnn
from streamlit.testing.v1 import AppTest

from vitdemo import units
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import load_dataset, load_raw
from vitdemo.runs import claims, local, people, points, queue, worker
from vitdemo.runs.people import CLI, NotAllowed
from vitdemo.runs.store import Registry, Run
from vitdemo.training.loop import train
from vitdemo.training.watch import WatchRow, choose_digits
from vitdemo.views import forms, learning

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 90  # the Evaluate page classifies 10,000 test images on a busy CPU


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder holding one tiny trained 'shipped' CNN for MNIST (a few seconds of training), scored as shipped."""
    config = TrainConfig(model=CNNConfig(width=4, depth=1), epochs=1, train_subset=1000, val_size=200, device="cpu")
    return train_shipped_cnn(tmp_path_factory.mktemp("shipped"), data_dir, config, scored=True)


@pytest.fixture
def env(shipped_env: Any, shipped: Path) -> Registry:
    return shipped_env(shipped)


def finished_run(reg: Registry, shipped: Path, name: str = "my-cnn") -> int:
    """A done run with a checkpoint (a copy of the shipped one) and two epochs of curves."""
    run_id = reg.create_run(
        name=name,
        kind="cnn",
        dataset="mnist",
        config=TrainConfig(model=CNNConfig(width=4, depth=1), epochs=2, seed=7, batch_size=64).to_dict(),
        status="done",
        device="cpu",
        test_acc=0.5,
        macro_f1=0.45,
        train_time_s=3.0,
        num_params=8000,
        finished_at=time.time(),
    )
    path = reg.checkpoint_dir / f"run-{run_id}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped / "cnn_mnist.safetensors", path)
    reg.update_run(run_id, checkpoint=str(path))
    for epoch in (1, 2):
        reg.add_epoch(run_id, {"epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1.1 / epoch, "train_acc": 0.5,
                               "val_acc": 0.4 + epoch / 10})  # fmt: skip
    return run_id


def sign_in(at: AppTest, name: str = "Ana") -> AppTest:
    """Give a display name on the Train page (asked once per browser)."""
    at.text_input(key="who_name").input(name)
    at.button(key="who_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


@pytest.mark.parametrize("page", ["train", "evaluate", "leaderboard"])
def test_pages_run_on_an_empty_registry(page: str, tmp_home: Path, tmp_path: Path, monkeypatch, worker_starts) -> None:
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    at = open_page(page)
    assert not at.error
    if page != "train":
        assert any("Train page" in text for text in texts(at, "info"))


def test_train_page_shows_the_estimate(env: Registry, worker_starts) -> None:
    at = open_page("train", expert=True)
    metrics = {m.label: m.value for m in at.metric}
    expected = forms.estimate(forms.config_from_values(forms.start_values()))  # the quick lesson CNN
    assert metrics["Parameters"] == f"{expected.num_params:,}"
    assert metrics["Memory"] == units.human_bytes(expected.total_bytes)
    assert metrics["Time"] not in ("-", "")  # measured on this machine before the run starts
    at.radio(key="tf_model_kind").set_value("vit").run()
    vit = forms.estimate(forms.config_from_values({**forms.start_values(), "model_kind": "vit"}))
    assert {m.label: m.value for m in at.metric}["Parameters"] == f"{vit.num_params:,}"


def test_train_form_invalid_value_shows_the_error_and_queues_nothing(env: Registry, worker_starts) -> None:
    at = open_page("train")
    at.radio(key="tf_model_kind").set_value("vit").run()  # the form opens on the quick lesson CNN
    at.number_input(key="tf_vit_num_heads").set_value(5).run()
    assert "Embedding dim (48) must be divisible by heads (5)." in texts(at, "error")
    assert not any(m.label == "Parameters" for m in at.metric)  # no estimate for a model that cannot be built
    at.button(key="start_training").click().run()
    assert any(text.startswith("Nothing was queued: Embedding dim (48)") for text in texts(at, "error"))
    assert [r for r in env.list_runs() if not r.baseline] == [] and worker_starts == []


def test_train_preset_and_valid_submit_queue_a_run(env: Registry, worker_starts) -> None:
    at = open_page("train")  # no teacher password: no name asked, the run is "home"'s
    at.button(key="preset_fast_demo").click().run()
    assert at.number_input(key="tf_train_subset").value == forms.PRESETS["fast demo"]["train_subset"]
    at.radio(key="tf_model_kind").set_value("cnn").run()
    at.text_input(key="tf_name").input("class demo").run()
    at.button(key="start_training").click().run()
    assert not at.exception and not at.error
    runs = [r for r in env.list_runs() if not r.baseline]
    assert len(runs) == 1
    run = runs[0]
    assert run.status == "queued" and run.name == "class demo" and run.device == "cpu" and run.owner == "home"
    expected = forms.apply_preset({**forms.default_values(), "model_kind": "cnn", "name": "class demo"}, "fast demo")
    assert TrainConfig.from_dict(run.config) == forms.config_from_values(expected)
    assert [call[1] for call in worker_starts] == ["cpu"]  # a worker was asked for on the run's device
    assert list(at.dataframe[0].value["name"]) == ["class demo"]  # the queue shows it


def test_train_page_shows_progress_and_cancels(env: Registry, worker_starts) -> None:
    run_id = env.create_run(
        name="live", kind="vit", dataset="mnist", config=TrainConfig(epochs=3).to_dict(), status="running",
        device="cpu", worker_pid=os.getpid(), heartbeat=time.time(),
        progress={"epoch": 2, "step": 40, "total_steps": 120, "images_per_s": 1500.0, "eta_s": 30.0},
    )  # fmt: skip
    env.add_epoch(run_id, {"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "train_acc": 0.7, "val_acc": 0.75})
    at = open_page("train")
    (progress,) = at.get("progress")
    assert progress.proto.text == "epoch 2/3 · step 40/120 · 1,500 images/s · about 30 s left"
    assert progress.proto.value == 33
    assert len(at.get("plotly_chart")) == 1  # the curves of epoch 1
    at.button(key=f"cancel_{run_id}").click().run()
    assert env.get_run(run_id).cancel_requested
    assert "Cancelling: the run stops within a second or two." in texts(at, "caption")


def _watch(labels: list[int], preds: list[int], *, calibrated: bool = False, step: int = 40) -> dict:
    indices = choose_digits(load_raw("mnist", train=False).labels.numpy())
    row = WatchRow(tuple(indices), tuple(labels), tuple(preds), (0.5,) * 10, step, step / 40, calibrated)
    return row.to_dict()


def _digits(at: AppTest) -> list[str]:
    """The watched images' labels as the page shows them (aria-label of each)."""
    return [label for h in at.get("html") for label in re.findall(r'class="vd-watch-digit[^"]*" aria-label="([^"]+)"',
                                                                   h.proto.body)]  # fmt: skip


def test_train_page_shows_the_loss_every_second_and_the_watched_digits(env: Registry, worker_starts) -> None:
    run_id = env.create_run(
        name="live", kind="cnn", dataset="mnist", config=TrainConfig(epochs=3).to_dict(), status="running",
        device="cpu", worker_pid=os.getpid(), heartbeat=time.time(),
    )  # fmt: skip
    for step in (1, 10, 20):
        point = {"step": step, "epoch": 1, "at_epoch": step / 40, "loss": 2.0 / step, "lr": 1e-3, "elapsed_s": step}
        progress = {"epoch": 1, "step": step, "total_steps": 120, "images_per_s": 900.0, "eta_s": 60.0}
        points.add_point(env, run_id, point, progress={**progress, "points": step})
    points.set_watch(env, run_id, _watch(list(range(10)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 4], step=20))
    at = open_page("train", expert=True)
    assert learning.why_more_epochs() in texts(at, "caption")  # beside the presets (the Expert view's)
    digits = _digits(at)
    assert len(digits) == 10 and digits[9] == "a 9, read as 4 (50%)" and digits[0] == "a 0, read as 0 (50%)"
    assert learning.watch_caption(WatchRow.from_dict(env.live().watches[run_id])) in texts(at, "caption")
    (chart,) = at.get("plotly_chart")  # before the first epoch: the loss curve already
    figure = json.loads(chart.proto.spec)
    (steps,) = [t for t in figure["data"] if t.get("name") == "training, every second"]
    assert steps["x"] == [1 / 40, 10 / 40, 20 / 40]
    points.set_watch(env, run_id, _watch(list(range(10)), list(range(10)), step=40))  # the fragment's next look
    at.run()
    assert all(", read as " in d and d.split(", read as ")[0][2:] == d.split(", read as ")[1][0] for d in _digits(at))


def test_a_dead_workers_run_is_failed_by_a_worker_and_the_page_shows_errors(env: Registry, worker_starts) -> None:
    orphan = env.create_run(
        name="orphan", kind="vit", dataset="mnist", config={}, status="running", worker_pid=None, heartbeat=None
    )
    open_page("train")
    assert env.get_run(orphan).status == "running"  # a page never decides that a run is orphaned...
    worker.sweep(env, local.LocalExecutor())  # ...the next worker does
    at = open_page("train")
    assert env.get_run(orphan).status == "failed"
    assert any("stopped unexpectedly" in text for text in texts(at, "error"))
    env.update_run(orphan, finished_at=time.time() - 100)
    env.create_run(
        name="oom", kind="vit", dataset="mnist", config={}, status="failed", finished_at=time.time(),
        error="out of memory: try a smaller batch size or model",
    )  # fmt: skip
    at = open_page("train")
    shown = [html.unescape(text) for text in texts(at, "error")]  # run errors are shown as plain text
    assert "Failed: out of memory: try a smaller batch size or model" in shown


def test_train_page_shows_a_finished_runs_result(env: Registry, shipped: Path, worker_starts) -> None:
    run_id = finished_run(env, shipped)
    points.set_watch(env, run_id, _watch(list(range(10)), list(range(10)), calibrated=True, step=80))
    at = open_page("train")
    assert len(_digits(at)) == 10
    assert "After 2 rounds through the pictures: 10 of 10 right." in texts(at, "caption")  # the Simple view
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == "50.00%" and metrics["Macro F1"] == "0.4500"
    assert "Done: trained in 3.0 s on cpu." in texts(at, "success")


def test_a_stopped_run_is_resumed_from_the_train_page(
    env: Registry, shipped: Path, data_dir: Path, worker_starts
) -> None:
    """A run with a saved epoch offers "Resume from epoch 1"; with "Train to epoch" 3 it queues a new run that
    goes on from the resume file with the longer schedule, its curves starting with the epoch it continues."""
    from vitdemo.training.resume import state_path

    run_id = finished_run(env, shipped)
    config = TrainConfig(model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=100)
    data = load_dataset("mnist", data_dir, val_size=100, seed=0, train_subset=300)
    train(config, data=data, state_path=state_path(env.checkpoint_dir, run_id))  # one epoch saved
    at = open_page("train")
    at.number_input(key=f"resume_epochs_{run_id}").set_value(3).run()
    at.button(key=f"resume_{run_id}").click().run()
    assert not at.exception and not texts(at, "error")
    (new,) = [r for r in env.list_runs() if r.id not in (run_id,) and not r.baseline]
    assert new.status == "queued" and new.config["resume"] == str(state_path(env.checkpoint_dir, run_id))
    assert new.config["epochs"] == 3 and [e["epoch"] for e in env.epochs(new.id)] == [1]


def test_leaderboard_shows_baseline_rows(env: Registry, shipped: Path, worker_starts) -> None:
    run_id = finished_run(env, shipped)
    at = open_page("leaderboard")
    table = at.dataframe[0].value
    assert set(table["name"]) == {"cnn_mnist", "my-cnn"}
    baseline = table[table["shipped"]].iloc[0]
    assert baseline["name"] == "cnn_mnist" and baseline["status"] == "done" and baseline["kind"] == "CNN"
    assert baseline["test accuracy"] > 0.3  # the tiny shipped CNN's own test accuracy
    at.multiselect(key="lb_kinds").set_value(["ViT"]).run()
    assert len(at.dataframe[0].value) == 0
    at.multiselect(key="lb_kinds").set_value([]).run()
    at.text_input(key="lb_text").input("my-").run()
    assert list(at.dataframe[0].value["id"]) == [run_id]


def test_leaderboard_baselines_cannot_be_deleted_runs_can(env: Registry, shipped: Path, worker_starts) -> None:
    run_id = finished_run(env, shipped)
    at = open_page("leaderboard")
    baseline_id = next(r.id for r in env.list_runs() if r.baseline)
    at.selectbox(key="lb_run").set_value(baseline_id).run()
    assert any("can't be deleted" in text for text in texts(at, "info"))
    assert not any(b.key == f"lb_delete_{baseline_id}" for b in at.button)

    at.selectbox(key="lb_run").set_value(run_id).run()
    assert at.button(key=f"lb_delete_{run_id}").disabled  # until the deletion is confirmed
    checkpoint = Path(env.get_run(run_id).checkpoint)
    at.checkbox(key=f"lb_confirm_{run_id}").check().run()
    at.button(key=f"lb_delete_{run_id}").click().run()
    assert [r.id for r in env.list_runs()] == [baseline_id] and not checkpoint.exists()
    assert f"Run #{run_id} was deleted." in texts(at, "success")


def test_leaderboard_overlays_curves_and_copies_settings(env: Registry, shipped: Path, worker_starts) -> None:
    run_id = finished_run(env, shipped)
    at = open_page("leaderboard")
    baseline = next(r for r in env.list_runs() if r.baseline)
    assert at.multiselect(key="lb_compare").value == [baseline.id]  # the shipped model's curves, from its file
    assert baseline.name in at.get("plotly_chart")[0].proto.spec
    at.multiselect(key="lb_compare").set_value([run_id]).run()
    (chart,) = at.get("plotly_chart")
    assert "my-cnn" in chart.proto.spec
    at.selectbox(key="lb_run").set_value(run_id).run()
    at.button(key=f"lb_use_{run_id}").click().run()
    assert not at.exception
    assert at.radio(key="tf_model_kind").value == "cnn"  # now on the Train page, filled in
    assert at.number_input(key="tf_cnn_width").value == 4
    assert at.number_input(key="tf_seed").value == 7 and at.number_input(key="tf_batch_size").value == 64
    assert any("#" + str(run_id) in text for text in texts(at, "info"))


def test_evaluate_shows_accuracy_confusion_matrix_and_cells(env: Registry, shipped: Path, worker_starts) -> None:
    at = open_page("evaluate", expert=True)
    baseline = next(r for r in env.list_runs() if r.baseline)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{baseline.test_acc:.2%}"  # recomputed here, equal to the stored one
    assert metrics["Macro F1"] == f"{baseline.macro_f1:.4f}"
    assert not at.get("plotly_chart")  # the first screen waits for no plotly bundle (issue 24)
    (table,) = matrix_tables(at)  # the confusion matrix: an HTML table, coloured cells, each a button
    counts = cell_counts(table)
    assert counts.sum() == 10_000 and counts.shape == (10, 10)
    assert int(np.trace(counts)) == 10_000 - int(metrics["Errors (of 10,000)"].replace(",", ""))
    assert table.count("background-color: #") == 100 and table.count('<button type="button" data-cell=') == 100
    assert table.count('aria-pressed="true"') == 1  # the picked cell (the most frequent mistake)
    per_class = next(d.value for d in at.dataframe if "support" in d.value.columns)
    assert list(per_class["class"]) == [str(i) for i in range(10)] and per_class["support"].sum() == 10_000

    at.selectbox(key=f"cm_{baseline.id}_true").set_value(3).run()
    at.selectbox(key=f"cm_{baseline.id}_pred").set_value(3).run()
    headers = [m for m in texts(at, "markdown") if m.startswith("#### True 3, predicted 3")]
    assert headers and "correctly classified" in headers[0]
    (gallery,) = at.get("image")
    captions = [img.caption for img in gallery.proto.imgs]
    assert 0 < len(captions) <= 12 and all(c.startswith("true 3 · predicted 3 (") for c in captions)
    (table,) = matrix_tables(at)
    assert 'data-cell="3-3" aria-pressed="true"' in table  # the table shows the picked cell pressed

    # a click on the cell of true 2, predicted 7 (the browser sends the table's state so; test_browser_lesson clicks)
    def picked() -> tuple[int, int]:
        return at.selectbox(key=f"cm_{baseline.id}_true").value, at.selectbox(key=f"cm_{baseline.id}_pred").value

    at.session_state[f"cm_{baseline.id}"] = {"cell": "2-7@1"}
    at.run()
    assert picked() == (2, 7) and 'data-cell="2-7" aria-pressed="true"' in matrix_tables(at)[0]
    assert any(m.startswith("#### True 2, predicted 7") for m in texts(at, "markdown"))
    at.selectbox(key=f"cm_{baseline.id}_true").set_value(5).run()  # the selectboxes move away; the state stays
    assert picked() == (5, 7)
    at.session_state[f"cm_{baseline.id}"] = {"cell": "2-7@2"}  # a second click on the same cell: a new stamp
    at.run()
    assert picked() == (2, 7)
    for bad in ("9-99@3", "2-7", "<b>@4", "2-7@" + "9" * 40, 7, ["2-7@5"]):  # from the browser: checked, ignored
        at.session_state[f"cm_{baseline.id}"] = {"cell": bad}
        at.run()
        assert not at.exception and picked() == (2, 7), bad


@pytest.mark.parametrize("broken", ["not-a-database", "home-is-a-file"])
@pytest.mark.parametrize("page", ["draw", "train", "evaluate", "leaderboard"])
def test_a_broken_registry_is_one_sentence_not_a_traceback(
    page: str, broken: str, tmp_home: Path, tmp_path: Path, monkeypatch, worker_starts
) -> None:
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    if broken == "not-a-database":
        (tmp_home / "registry.sqlite").write_bytes(b"this is not an SQLite database\n" * 100)
    else:
        home = tmp_path / "home-file"
        home.write_text("a file where the runs folder should be")
        monkeypatch.setenv("VITDEMO_HOME", str(home))
    if page == "draw":  # the default page: app.py's first run, with the sidebar
        at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S).run()
    else:
        at = open_page(page)
    assert not at.exception  # no traceback
    errors = texts(at, "error")
    shown = " ".join(errors + texts(at, "warning"))
    what = "damaged" if broken == "not-a-database" else "could not be read"
    assert what in shown and str(tmp_path) not in shown  # no server folder in the browser
    if page == "draw":  # the Draw page still works with the shipped models; the sidebar says what is wrong
        assert errors == []
    elif broken == "not-a-database":
        assert len(errors) == 1 and errors[0].startswith("The run registry file is damaged") and "aside" in errors[0]
    else:
        assert len(errors) == 1 and errors[0].startswith("The run registry could not be read: the server's runs")


def test_evaluate_names_a_broken_checkpoint_without_its_folder(env: Registry, shipped: Path, worker_starts) -> None:
    run_id = finished_run(env, shipped, name="broken")
    path = Path(env.get_run(run_id).checkpoint)
    path.write_bytes(b"a file that is not a safetensors checkpoint")
    at = open_page("evaluate")
    at.selectbox(key="eval_run").set_value(run_id).run()
    assert not at.exception
    (error,) = texts(at, "error")
    assert error.startswith(f"Run #{run_id} cannot be evaluated: ") and path.name in error
    assert str(path.parent) not in error and str(env.home) not in error


# -- a class: identities, the teacher, limits --------------------------------------------------------------
def queue_cnn(at: AppTest, name: str) -> Run:
    at.button(key="preset_fast_demo").click().run()
    at.radio(key="tf_model_kind").set_value("cnn").run()
    at.text_input(key="tf_name").input(name).run()
    at.button(key="start_training").click().run()
    assert not at.error, texts(at, "error")
    return max((r for r in Registry(os.environ["VITDEMO_HOME"]).list_runs() if not r.baseline), key=lambda r: r.id)


def test_two_students_share_the_queue_and_only_the_teacher_cancels_anothers_run(
    env: Registry, worker_starts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    ana = sign_in(open_page("train"), "Ana")
    run = queue_cnn(ana, "[click](http://evil.example) **x**")
    assert run.owner.startswith("person:") and ana.button(key=f"cancel_{run.id}")  # hers: she may cancel it
    mine = [m for m in texts(ana, "markdown") if "1st in line" in m]
    assert mine and "&#91;click&#93;" in mine[0] and "](http" not in mine[0]  # the name is text, not a link

    ben = sign_in(open_page("train"), "Ben")
    table = ben.dataframe[0].value
    assert list(table["name"]) == [run.name] and list(table["by"]) == ["Ana"] and list(table["place"]) == ["1"]
    assert not [b for b in ben.button if b.key in (f"cancel_{run.id}", "teacher_cancel")]  # nothing to click...
    ben_actor = people.by_token(env, ben.query_params["who"]).actor()
    with pytest.raises(NotAllowed, match="belongs to Ana"):  # ...and the queue refuses him anyway
        queue.request_cancel(env, run.id, ben_actor)
    assert env.get_run(run.id).status == "queued"

    again = open_as("train", token=ana.query_params["who"])  # a reload keeps Ana
    assert not [t for t in again.text_input if t.key == "who_name"] and again.button(key=f"cancel_{run.id}")
    draw = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    draw.query_params["who"] = ana.query_params["who"]
    assert "You: Ana" in [c.value for c in draw.run().sidebar.caption]  # every page's sidebar says who you are

    wrong = sign_in(open_as("train", password="wrong"), "Guess")
    assert not [b for b in wrong.button if b.key == "teacher_cancel"]  # a wrong password unlocks nothing
    assert not [e for e in wrong.expander if "Class settings" in e.label]
    teacher = sign_in(open_as("train", password="s3cret"), "Ms Smith")
    teacher.selectbox(key="teacher_cancel_pick").set_value(run.id).run()
    teacher.button(key="teacher_cancel").click().run()
    assert env.get_run(run.id).status == "cancelled"


def test_the_teacher_sets_limits_and_pauses_the_queue(env: Registry, worker_starts) -> None:
    teacher = sign_in(open_as("train", secrets={"teacher_password": "from-secrets"}, password="from-secrets"), "T")
    teacher.number_input(key="limit_epochs").set_value(2).run()
    teacher.button(key="limit_save").click().run()
    assert queue.get_limits(env).max_epochs == 2
    teacher.toggle(key="teacher_pause").set_value(True).run()
    assert claims.is_paused(env)

    student = sign_in(open_as("train", secrets={"teacher_password": "from-secrets"}), "Cleo")
    assert not [e for e in student.expander if "Class settings" in e.label]
    assert any("paused the queue" in w for w in texts(student, "warning"))
    student.button(key="preset_fast_demo").click().run()  # 3 epochs: over the teacher's 2
    assert any("over the class limit of 2 epochs" in w for w in texts(student, "warning"))  # said before...
    student.button(key="start_training").click().run()
    (error,) = texts(student, "error")
    assert error.startswith("Nothing was queued: 3 epochs is over the class limit of 2 epochs")  # ...and refused
    assert [r for r in env.list_runs() if not r.baseline] == []


def test_a_student_cannot_delete_anothers_run_on_the_leaderboard(
    env: Registry, shipped: Path, worker_starts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    ana = people.register(env, "Ana")
    run_id = finished_run(env, shipped)
    env.update_run(run_id, owner=ana.owner)
    ben = open_as("leaderboard", token=people.register(env, "Ben").token)
    ben.selectbox(key="lb_run").set_value(run_id).run()
    assert not [b for b in ben.button if b.key == f"lb_delete_{run_id}"]
    assert "Only the run's owner or the teacher can delete it." in texts(ben, "caption")
    assert list(ben.dataframe[0].value.set_index("id").loc[[run_id], "by"]) == ["Ana"]
    owner = open_as("leaderboard", token=ana.token)
    owner.selectbox(key="lb_run").set_value(run_id).run()
    owner.checkbox(key=f"lb_confirm_{run_id}").check().run()
    owner.button(key=f"lb_delete_{run_id}").click().run()
    assert run_id not in [r.id for r in env.list_runs()]


def test_a_run_deleted_while_picked_falls_back_to_the_shipped_model(
    env: Registry, shipped: Path, worker_starts
) -> None:
    run_id = finished_run(env, shipped)
    first = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S).run()  # the Draw page
    label = f"#{run_id} my-cnn (50.00%)"
    assert label in first.selectbox(key="cnn_model_mnist").options  # the picker's list is cached for 5 s
    queue.delete_run(env, run_id, CLI)  # on the Leaderboard, by someone else
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    at.session_state["cnn_model_mnist"] = f"run:{run_id}"  # this student had picked it
    at.run()
    assert not at.exception and at.selectbox(key="cnn_model_mnist").value == "shipped"
    assert label not in at.selectbox(key="cnn_model_mnist").options
    assert "The CNN run you picked was deleted: the shipped CNN is shown instead." in texts(at, "warning")
    shown = " ".join(texts(at, "warning") + texts(at, "error") + texts(at, "markdown") + texts(at, "caption"))
    assert str(env.home) not in shown and "run-" not in shown
