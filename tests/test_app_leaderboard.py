"""The Leaderboard page's families, runs side by side and label-budget study under Streamlit's AppTest: the whole
app against a private registry, a logistic regression fitted here (real skops file, real test split) and a results
file written by the same code as scripts/compare_label_budget.py --json."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from apptest import cell_counts, matrix_tables, open_page
from streamlit.testing.v1 import AppTest

from vitdemo.config import TrainConfig, TransferConfig, ViTConfig
from vitdemo.data import load_raw
from vitdemo.models.classic import ClassicConfig, fit_classic, load_classic, save_classic, score_classic
from vitdemo.runs.store import Registry
from vitdemo.views import label_budget, words

TIMEOUT_S = 90


@pytest.fixture(scope="module")
def tiny_logreg(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A logistic regression fitted on 500 MNIST training images (a second), as a skops file."""
    train = load_raw("mnist", train=True, data_dir=data_dir)
    fitted = fit_classic(ClassicConfig(max_iter=100), train.images[:500].numpy(), train.labels[:500].numpy())
    return save_classic(tmp_path_factory.mktemp("classic") / "logreg.skops", fitted)


@pytest.fixture
def env(tmp_home: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A private registry, no shipped checkpoints (only what a test writes there); no worker starts (conftest)."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(shipped))
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return Registry(tmp_home)


@pytest.fixture
def family_runs(env: Registry, tiny_logreg: Path) -> dict[str, int]:
    pretrained = TrainConfig(model=ViTConfig(), init="mae_vit_mnist.safetensors", labels=100).to_dict()
    ids = {
        "classic": env.create_run(
            name="pixels-logreg", kind="logreg", dataset="mnist", config={"kind": "logreg"}, status="done",
            checkpoint=str(tiny_logreg), test_acc=0.8, macro_f1=0.8,
        ),
        "pretrained": env.create_run(
            name="vit-mae-100", kind="vit", dataset="mnist", config=pretrained, status="done", test_acc=0.75,
        ),
        "transfer": env.create_run(
            name="vgg", kind="transfer", dataset="mnist", status="done", test_acc=0.9,
            config=TrainConfig(model=TransferConfig(arch="vgg16")).to_dict(),
        ),
    }  # fmt: skip
    for epoch in (1, 2):
        env.add_epoch(ids["pretrained"], {"epoch": epoch, "val_acc": 0.5 + epoch / 10, "val_loss": 1.0 / epoch})
    return ids


def open_leaderboard(expert: bool = True) -> AppTest:
    """The Leaderboard, in the Expert view unless asked (these tests check its technical figures)."""
    return open_page("leaderboard", timeout=TIMEOUT_S, expert=expert)


def test_the_table_shows_and_filters_families(family_runs: dict[str, int]) -> None:
    at = open_leaderboard()
    table = at.dataframe[0].value
    assert dict(zip(table["id"], table["family"], strict=True)) == {
        family_runs["classic"]: "Classic", family_runs["pretrained"]: "Pretrained", family_runs["transfer"]: "Transfer"
    }  # fmt: skip
    assert at.multiselect(key="lb_families").options == ["Classic", "Transfer", "Pretrained"]
    at.multiselect(key="lb_families").set_value(["transfer", "classic"]).run()
    assert sorted(at.dataframe[0].value["id"]) == sorted([family_runs["classic"], family_runs["transfer"]])
    assert set(at.multiselect(key="lb_compare").options) == {  # the runs to compare follow the filter
        f"#{family_runs['classic']} pixels-logreg (Logistic regression, MNIST)",
        f"#{family_runs['transfer']} vgg (VGG16, MNIST)",
    }


def test_runs_side_by_side_with_scores_on_request(family_runs: dict[str, int], tiny_logreg: Path) -> None:
    at = open_leaderboard()
    assert at.multiselect(key="lb_compare").value == []  # no shipped ViT or CNN in this registry
    at.multiselect(key="lb_compare").set_value([family_runs["classic"], family_runs["pretrained"]]).run()
    table = next(d.value for d in at.dataframe if "calibration error" in d.value.columns)
    assert list(table["family"]) == ["Classic", "Pretrained"] and list(table["test accuracy"]) == [0.8, 0.75]
    assert table["test loss"].isna().all()  # stored figures only until the test set is classified
    (curves,) = [c.proto.spec for c in at.get("plotly_chart") if "validation accuracy" in c.proto.spec]
    assert "vit-mae-100" in curves

    at.toggle(key="lb_score").set_value(True).run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "calibration error" in d.value.columns)
    expected = score_classic(load_classic(tiny_logreg), load_raw("mnist", train=False))
    assert table["test accuracy"][0] == pytest.approx(expected.accuracy)  # measured now
    assert table["test loss"][0] == pytest.approx(expected.loss, rel=1e-5) and table["test loss"][1:].isna().all()
    grids = matrix_tables(at)  # the matrices: coloured tables, no plotly
    assert len(grids) == 1 and cell_counts(grids[0]).sum() == 10_000  # one file (the other has none)
    traces = [t["type"] for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]]
    assert traces and "heatmap" not in traces  # the curves stay plotly


def test_the_label_budget_study_is_a_plot_and_a_table(env: Registry, family_runs: dict[str, int]) -> None:
    shipped = Path(str(env.home)).parent / "shipped"
    rows = [
        {"dataset": "mnist", "model": "ViT", "labels": 100, "test_acc": 0.372, "val_acc": 0.37},
        {"dataset": "mnist", "model": "ViT + MAE", "labels": 100, "test_acc": 0.756, "pretrain_s": 300.0},
        {"dataset": "mnist", "model": "ViT", "labels": 0, "test_acc": 0.99},
    ]
    label_budget.write_results(shipped / label_budget.FILE_NAME, rows, note="measured on [a laptop](http://x)")
    at = open_leaderboard()
    assert "### How many labels does a model need?" in [m.value for m in at.markdown]
    (plot,) = [c.proto.spec for c in at.get("plotly_chart") if "labelled training images" in c.proto.spec]
    assert "ViT + MAE" in plot and "test accuracy" in plot
    (table,) = [d.value for d in at.dataframe if "fine-tune (s)" in d.value.columns]
    assert list(table["model"]) == ["ViT", "ViT", "ViT + MAE"] and list(table["labels"]) == ["100", "all", "100"]
    summary = "- MNIST, 100 labels: ViT + MAE 75.6% against ViT 37.2% (+38.4 points)"
    assert summary in [html.unescape(m.value) for m in at.markdown]
    assert any("&#91;a laptop&#93;" in c.value for c in at.caption)  # the file's note literally, not a link

    (shipped / label_budget.FILE_NAME).write_text("{broken")
    at = open_leaderboard()
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("The label-budget results cannot be shown: label_budget.json could not be read")
    assert str(shipped) not in warning


def test_without_results_the_study_says_how_to_make_them(env: Registry, family_runs: dict[str, int]) -> None:
    at = open_leaderboard()
    assert any("scripts/compare_label_budget.py --json" in c.value for c in at.caption)
    assert not any("labelled training images" in c.proto.spec for c in at.get("plotly_chart"))
    student = open_leaderboard(expert=False)  # a student's Simple view: no command, no file name
    assert words.say("leaderboard", "budget_missing") in [c.value for c in student.caption]
    assert not [c.value for c in student.caption if "scripts/" in c.value or ".json" in c.value]
