"""The class race: when each run first reached 98, 99 and 99.5% validation accuracy, each person's fastest run
per device (only the same device compares), on the Leaderboard and Present."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest import open_page

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.runs import milestones as race
from vitdemo.runs import people
from vitdemo.runs.store import Registry
from vitdemo.views import standings as race_view

CONFIG = TrainConfig(model=CNNConfig()).to_dict()


def run_with_curve(reg: Registry, owner: str, device: str, curve: list[tuple[float, float]], **fields) -> int:
    """A run on `device` whose epochs reached `curve`'s (validation accuracy, seconds) one after the other."""
    run_id = reg.create_run(
        name=f"cnn-{owner}", kind="cnn", dataset="mnist", config=CONFIG, status="done", device=device,
        owner=owner, **fields,
    )  # fmt: skip
    for epoch, (acc, seconds) in enumerate(curve, start=1):
        reg.add_epoch(run_id, {"epoch": epoch, "val_acc": acc, "elapsed_s": seconds})
    return run_id


@pytest.fixture
def class_runs(reg: Registry) -> dict[str, int]:
    ana, ben = people.register(reg, "Ana"), people.register(reg, "Ben")
    a, b = people.person_owner(ana.id), people.person_owner(ben.id)
    return {
        "ana_slow": run_with_curve(reg, a, "cpu", [(0.97, 20.0), (0.991, 41.0)]),
        "ana_fast": run_with_curve(reg, a, "cpu", [(0.985, 12.0), (0.992, 24.0), (0.996, 36.0)]),
        "ben": run_with_curve(reg, b, "cpu", [(0.99, 30.0)]),
        "ben_gpu": run_with_curve(reg, b, "cuda", [(0.995, 3.0)]),
        "never": run_with_curve(reg, b, "cpu", [(0.95, 5.0), (0.97, 10.0)]),
        "shipped": run_with_curve(reg, "shipped", "cpu", [(0.999, 1.0)], baseline=1),
    }


def test_milestones_are_the_first_epoch_that_reached_them(reg: Registry, class_runs: dict[str, int]) -> None:
    assert race.milestone_times(reg, class_runs["ana_fast"]) == {0.98: 12.0, 0.99: 24.0, 0.995: 36.0}
    assert race.milestone_times(reg, class_runs["never"]) == {0.98: None, 0.99: None, 0.995: None}
    assert reg.first_reached(0.99)[class_runs["ana_slow"]]["epoch"] == 2


def test_standings_keep_each_persons_fastest_run_per_device(reg: Registry, class_runs: dict[str, int]) -> None:
    board = race.standings(reg, "mnist", 0.99)
    assert list(board) == ["cuda", "cpu"]  # the GPU's 3 s finish is not a CPU record: its own table
    cpu = board["cpu"]
    assert [(f.person, f.run.id, f.seconds) for f in cpu] == [
        ("Ana", class_runs["ana_fast"], 24.0),
        ("Ben", class_runs["ben"], 30.0),
    ]
    assert [f.person for f in board["cuda"]] == ["Ben"]
    assert all(f.run.id != class_runs["shipped"] for fs in board.values() for f in fs)  # trained elsewhere
    assert race.standings(reg, "fashion") == {}
    assert [f.person for f in race.standings(reg, "mnist", 0.995)["cpu"]] == ["Ana"]
    frame = race_view.standings_frame(cpu)
    assert frame["place"].tolist() == ["🥇", "🥈"] and frame["time"].tolist() == ["24 s", "30 s"]


def test_the_leaderboard_and_present_show_the_race(
    reg: Registry, class_runs: dict[str, int], shipped_env, tmp_path: Path
) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shipped_env(shipped)
    at = open_page("leaderboard")
    frames = [d.value for d in at.dataframe if "who" in d.value.columns]
    assert [f["who"].tolist() for f in frames] == [["Ben"], ["Ana", "Ben"]]
    at.segmented_control(key="lb_race_target").set_value("99.5%").run()
    frames = [d.value for d in at.dataframe if "who" in d.value.columns]
    assert [f["who"].tolist() for f in frames] == [["Ben"], ["Ana"]]

    present = open_page("present")  # the projector's copy, folded into a button: the top five to 99%
    frames = [d.value for d in present.dataframe if "who" in d.value.columns]
    assert [f["who"].tolist() for f in frames] == [["Ben"], ["Ana", "Ben"]] and "run" not in frames[0].columns
