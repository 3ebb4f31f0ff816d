"""`python -m vitdemo classset ...` through vitdemo.cli.main.main (one-line errors, exit 2), and the Class set page's
sentences and tables (vitdemo.views.classset)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import zipfile
from pathlib import Path

import pytest
from browser import DIGIT_STROKES, stroke_image

from vitdemo.classset import store as classset
from vitdemo.classset.scores import Candidate, ClassScore
from vitdemo.classset.store import Answer, ClassSet, Submission
from vitdemo.cli import main as cli
from vitdemo.runs.people import Actor
from vitdemo.views.classset import answers_line, caption, galleries, label_frame, people_frame, scores_frame, verdict


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """cli.main with the `classset` verb registered (vitdemo/cli/main.py does it once merged)."""
    from vitdemo.cli.classset import add_parsers

    build = cli.build_parser

    def with_classset() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "classset" not in sub.choices:
            add_parsers(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", with_classset)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_list_export_freeze_score_and_delete(run_cli, tmp_path: Path, mnist_checkpoints: Path) -> None:
    home = str(tmp_path / "home")
    assert "no mnist drawings yet" in run_cli("classset", "list", "--home", home)[1]
    code, _, err = run_cli("classset", "freeze", "--home", home)
    assert code == 2 and err.startswith("error: The class set has no mnist drawings yet") and err.count("\n") == 1

    store = ClassSet(home)
    answers = [Answer("vit", "shipped vit_mnist", 1, 0.7), Answer("cnn", "shipped cnn_mnist", 7, 0.9)]
    classset.submit(store, stroke_image(DIGIT_STROKES["7"]), 7, Actor("person:1", "Ana"), answers)
    classset.submit(store, stroke_image(DIGIT_STROKES["1"]), 1, Actor("person:2", "Ben"))
    code, out, _ = run_cli("classset", "list", "--home", home)
    assert code == 0 and out.splitlines()[1].startswith("#1     7") and "vit 1 (70%) fooled" in out
    listed = json.loads(run_cli("classset", "list", "--home", home, "--json")[1])
    assert [d["id"] for d in listed] == [2, 1] and listed[1]["answers"][0]["model"] == "shipped vit_mnist"

    code, out, _ = run_cli("classset", "export", str(tmp_path / "c.zip"), "--home", home)
    assert (
        code == 0
        and "2 drawings" in out
        and "class-labels-idx1-ubyte.gz" in zipfile.ZipFile(tmp_path / "c.zip").namelist()
    )
    code, out, _ = run_cli("classset", "freeze", "--home", home, "--repeat", "7")
    assert code == 0 and Path(out.strip()).is_file() and out.strip().endswith(".npz")

    code, out, _ = run_cli("classset", "score", "--home", home, "--checkpoints", str(mnist_checkpoints), "--json")
    rows = json.loads(out)
    names = {r["name"] for r in rows}  # the shipped networks and fine-tunes; never an encoder (no trained head)
    assert code == 0 and {"cnn-mnist-lean", "vit-mnist-100"} <= names and not any("encoder" in n for n in names)
    assert all(r["n"] == 2 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert "class set" in run_cli("classset", "score", "--home", home, "--checkpoints", str(mnist_checkpoints))[1]

    assert run_cli("classset", "delete", "1", "--home", home)[:2] == (0, "deleted drawing #1\n")  # a terminal: teacher
    code, _, err = run_cli("classset", "delete", "1", "--home", home)
    assert code == 2 and err == "error: no submission #1 in the class set\n"
    assert [s.id for s in store.list()] == [2]


def sub(id: int, label: int, who: str, *answers: tuple[str, int]) -> Submission:
    owner = f"person:{who}"
    return Submission(id, label, "mnist", owner, who, 0.0, "draw", "d.png", "i.png", tuple(
        Answer(kind, "m", said, 0.5) for kind, said in answers
    ))  # fmt: skip


def test_verdicts_say_whom_a_drawing_fooled() -> None:
    vit, cnn = Answer("vit", "m", 1, 0.8), Answer("cnn", "m", 7, 0.9)
    assert verdict(7, [vit, cnn]) == "It fooled the ViT (it read 1) but not the CNN."
    assert verdict(3, [vit, cnn]) == "It fooled the ViT (it read 1) and the CNN (it read 7)."
    assert verdict(7, [cnn]) == "The CNN was not fooled: it read a 7."
    assert verdict(7, [cnn, Answer("vit", "m", 7, 0.5)]) == "No model was fooled: they all read a 7."
    assert verdict(7, []) == "No model answered this drawing."


def test_galleries_counts_and_the_score_table() -> None:
    subs = [sub(4, 7, "Ana", ("vit", 1), ("cnn", 1)), sub(3, 1, "Ben", ("vit", 7), ("cnn", 1)),
            sub(2, 7, "Ana", ("vit", 7), ("cnn", 2)), sub(1, 7, "Cy")]  # fmt: skip
    groups = galleries(subs)
    assert {k: [s.id for s in v] for k, v in groups.items()} == {
        "vit": [4, 3],
        "cnn": [4, 2],
        "both": [4],
        "all": [4, 3, 2, 1],
    }
    assert caption(subs[0]) == "#4 · a 7 by Ana" and caption(dataclasses.replace(subs[0], owner="home")) == "#4 · a 7"
    assert answers_line(subs[0]) == "ViT 1 (50%) ✗ · CNN 1 (50%) ✗" and answers_line(subs[3]) == ""
    labels = label_frame(subs).set_index("digit")
    assert labels.loc["7"].tolist() == [3, 1, 2] and labels.loc["0"].tolist() == [0, 0, 0] and len(labels) == 10
    people = people_frame(subs)
    assert people.values.tolist() == [["Ana", 2, 1, 2], ["Ben", 1, 1, 0], ["Cy", 1, 0, 0]]

    cand = Candidate("=vit", "vit", Path("a"), 3, False, 0.99)
    frame = scores_frame([ClassScore(cand, 4, 3), ClassScore(cand, 4, 0, "a fashion model")])
    assert frame["class-set accuracy"].tolist()[0] == 0.75 and frame["note"].tolist()[1] == "a fashion model"
    assert frame["name"].tolist()[0] == "=vit" and frame["run"].tolist()[0] == "#3"
