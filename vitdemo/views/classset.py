"""What the Class set page and the submit widget say, without Streamlit: sentences, gallery groups and tables
built from submissions and scores, so they are tested without a browser. Names are anyone's input: tables
carry them as plain cells, and a page that puts one in markdown passes it through `literal_markdown`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd

from vitdemo.classset.scores import ClassScore
from vitdemo.classset.store import Answer, Submission, fooled
from vitdemo.runs.schema import HOME_OWNER
from vitdemo.views.names import KINDS, kind_name

GALLERIES = {  # gallery key -> (its title, the model kinds a drawing must have fooled; () = every drawing)
    "vit": ("Fooled the ViT", ("vit",)),
    "cnn": ("Fooled the CNN", ("cnn",)),
    "both": ("Fooled both", ("vit", "cnn")),
    "all": ("All drawings", ()),
}


def answer_text(answer: Answer, truth: int | None = None) -> str:
    """'ViT 1 (80%)', with ' ✗' when it is not `truth`."""
    wrong = " ✗" if truth is not None and answer.label != truth else ""
    return f"{kind_name(answer.kind)} {answer.label} ({answer.prob:.0%}){wrong}"


def answers_line(sub: Submission) -> str:
    """'ViT 1 (80%) ✗ · CNN 7 (99%)'; '' when no model answered."""
    return " · ".join(answer_text(a, sub.label) for a in sub.answers)


def verdict(label: int, answers: Sequence[Answer]) -> str:
    """One sentence on whom the drawing fooled: 'It fooled the ViT (it read 1) but not the CNN.'"""
    if not answers:
        return "No model answered this drawing."
    wrong = [a for a in answers if a.label != label]
    right = [kind_name(a.kind) for a in answers if a.label == label]
    if not wrong:
        if len(right) == 1:
            return f"The {right[0]} was not fooled: it read a {label}."
        return f"No model was fooled: they all read a {label}."
    said = " and the ".join(f"{kind_name(a.kind)} (it read {a.label})" for a in wrong)
    tail = f" but not the {' or the '.join(right)}" if right else ""
    return f"It fooled the {said}{tail}."


def galleries(subs: Sequence[Submission]) -> dict[str, list[Submission]]:
    """Gallery key -> its submissions (newest first, as given)."""
    return {key: fooled(subs, kinds) if kinds else list(subs) for key, (_, kinds) in GALLERIES.items()}


def caption(sub: Submission) -> str:
    """'#12 · a 7 by Ana', or '#12 · a 7' where nobody gives names (home); plain text: pass it through
    literal_markdown for markdown."""
    by = "" if sub.owner == HOME_OWNER else f" by {sub.who}"
    return f"#{sub.id} · a {sub.label}{by}"


def _fooled_columns(group: Sequence[Submission], kinds: Sequence[str]) -> dict[str, int]:
    return {f"fooled {kind_name(k)}": sum(s.fooled(k) for s in group) for k in kinds}


def label_frame(subs: Sequence[Submission], kinds: Sequence[str] = tuple(KINDS)) -> pd.DataFrame:
    """One row per label 0-9: how many drawings, and how many fooled each model."""
    rows = []
    for label in range(10):
        group = [s for s in subs if s.label == label]
        rows.append({"digit": str(label), "drawings": len(group), **_fooled_columns(group, kinds)})
    return pd.DataFrame(rows)


def people_frame(subs: Sequence[Submission], kinds: Sequence[str] = tuple(KINDS)) -> pd.DataFrame:
    """One row per person (by owner, with their latest name): drawings and how many fooled each model; most first."""
    groups: dict[str, list[Submission]] = {}
    for s in subs:
        groups.setdefault(s.owner, []).append(s)
    rows = [
        {"who": max(group, key=lambda s: s.id).who, "drawings": len(group), **_fooled_columns(group, kinds)}
        for group in groups.values()
    ]
    columns = ["who", "drawings", *(f"fooled {kind_name(k)}" for k in kinds)]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["drawings", "who"], ascending=[False, True], ignore_index=True)


NO_DRAWINGS = "No class drawings yet: submit some from Draw (pick the true label under the answers), then come back."


def scores_message(rows: Sequence[ClassScore]) -> str | None:
    """What to say instead of the class-set table: None when some model was scored on some drawings; with no
    drawings, what to do (a table of 'None' for every run says nothing); with no model, that one must be trained."""
    if not rows:
        return "No trained model to score yet: train one on the Train page."
    if not any(r.n for r in rows):
        return NO_DRAWINGS
    return None


def scores_frame(rows: Sequence[ClassScore]) -> pd.DataFrame:
    """The class-set leaderboard: best class-set accuracy first, with each model's MNIST test accuracy beside."""
    data = [
        {
            "run": f"#{r.candidate.run_id}" if r.candidate.run_id is not None else "shipped",
            "name": r.candidate.name,
            "model": kind_name(r.candidate.kind),
            "shipped": r.candidate.shipped,
            "class-set accuracy": r.accuracy,
            "drawings": r.n,
            "test accuracy": r.candidate.test_acc,
            "note": r.problem,
        }
        for r in rows
    ]
    columns = ["run", "name", "model", "shipped", "class-set accuracy", "drawings", "test accuracy", "note"]
    return pd.DataFrame(data, columns=columns)


# --- the live class wall (Present) ---------------------------------------------------------------------------
def wall_text(counts: dict[str, int], kinds: Sequence[str] = tuple(KINDS)) -> str:
    """'12 drawings · fooled the ViT 7 · the CNN 4' from ClassSet.fooled_counts; plain text."""
    total = counts.get("", 0)
    if not total:
        return "No class drawings yet: draw a digit, then Stump the model."
    fooled_ = " · ".join(
        f"{'fooled the' if i == 0 else 'the'} {kind_name(k)} {counts.get(k, 0)}" for i, k in enumerate(kinds)
    )
    return f"{total} drawing{'s' if total != 1 else ''} · {fooled_}"


def wall_tile_html(uri: str | None, sub: Submission, kinds: Sequence[str] = tuple(KINDS)) -> str:
    """One drawing of the class wall: its 28x28 input, its true label, and a mark per model (✗ fooled it)."""
    marks = " ".join(
        f'<span class="{"vd-wrong" if sub.fooled(k) else "vd-right"}">{kind_name(k)}{" ✗" if sub.fooled(k) else " ✓"}</span>'
        for k in kinds
        if sub.answer(k) is not None
    )
    said = "; ".join(f"{kind_name(k)} read {a.label}" for k in kinds if (a := sub.answer(k)) is not None)
    image = f'<img src="{uri}" alt="">' if uri else '<div class="vd-wall-missing"></div>'
    return (
        f'<figure class="vd-wall-tile" aria-label="{escape(f"a {sub.label}: {said}" if said else f"a {sub.label}")}">'
        f"{image}<figcaption><b>{sub.label}</b> {marks}</figcaption></figure>"
    )


def wall_html(text: str, tiles: Sequence[str]) -> str:
    """The wall: its line of counts over a row of the newest drawings (escaped text; tiles from wall_tile_html)."""
    return (
        f'<div class="vd-wall" role="group" aria-label="class wall"><p class="vd-wall-text">{escape(text)}</p>'
        f'<div class="vd-wall-row">{"".join(tiles)}</div></div>'
    )
