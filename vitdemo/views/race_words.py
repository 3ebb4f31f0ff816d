"""The race page in the Simple view's words (issue 24): the knobs' plain names and help, the chart's titles, the
short label on each turn and the sentence of what to look for after it, the figures under each model and the
settings a student's device shows. The sentences themselves are in `vitdemo.views.words` (the readability test
reads them there); the Expert view keeps `vitdemo.views.race`. No Streamlit, no torch.
"""

from __future__ import annotations

from vitdemo.race.knobs import Change
from vitdemo.race.state import RaceView, SideView
from vitdemo.views.names import DATASETS_SHORT, KINDS
from vitdemo.views.words import say

# knob -> its key in WORDS["race"] (spelt out, so that the test that every entry is used finds each one)
LABELS = {
    "lr": "knob_lr", "batch_size": "knob_batch_size", "weight_decay": "knob_weight_decay",
    "augment": "knob_augment", "label_noise": "knob_label_noise", "train_size": "knob_train_size",
    "extra_data": "knob_extra_data", "vit_patch": "knob_vit_patch", "vit_depth": "knob_vit_depth",
    "cnn_width": "knob_cnn_width", "cnn_depth": "knob_cnn_depth",
}  # fmt: skip
HELPS = {
    "lr": "help_lr", "batch_size": "help_batch_size", "weight_decay": "help_weight_decay", "augment": "help_augment",
    "label_noise": "help_label_noise", "train_size": "help_train_size", "extra_data": "help_extra_data",
}  # fmt: skip


def knob_name(knob: str) -> str:
    """A knob's plain name: 'Learning speed'."""
    return say("race", LABELS[knob]) if knob in LABELS else knob


def knob_help(knob: str) -> str:
    return say("race", HELPS[knob]) if knob in HELPS else ""


def axis_names() -> dict[str, str]:
    return {"seconds": say("race", "axis_seconds"), "images": say("race", "axis_images")}


def titles() -> tuple[str, str]:
    """The chart's two panel titles: (the loss's, the accuracy's)."""
    return say("race", "loss_title"), say("race", "accuracy_title")


def _ratio(old: float, new: float) -> str:
    r = new / old if old else float("inf")
    return f"×{r:.3g}" if r >= 1 else f"÷{1 / r:.3g}"


def knob_label(change: Change) -> str:
    """The short label on the chart and over the note: 'Learning speed ×10', 'Wrong labels 30%'."""
    k, old, new = change.knob, change.old, change.new
    name = knob_name(k)
    if k == "lr":
        return f"{name} {_ratio(float(old), float(new))}"
    if k == "label_noise":
        return f"{name} {new:.0%}"
    if k == "train_size":
        return f"{new:,} {name.lower()}"
    if k == "extra_data":
        return f"{'+' if new else '−'} {name.lower()}"
    return f"{name} {old:g}→{new:g}"


def _lr(old: float, new: float) -> str:
    r, ratio = new / old, _ratio(old, new)
    if r >= 3:
        return say("race", "lr_up_big", ratio=ratio)
    if r <= 1 / 3:
        return say("race", "lr_down_big", ratio=ratio)
    return say("race", "lr_up", ratio=ratio) if r > 1 else say("race", "lr_down", ratio=ratio)


def _data(c: Change) -> str:
    if c.knob == "label_noise":
        return say("race", "noise_up", tenths=round(c.new * 10)) if c.new > c.old else say("race", "noise_down")
    if c.knob == "train_size":
        return say("race", "size_down") if c.new < c.old else say("race", "size_up")
    return say("race", "class_on") if c.new else say("race", "class_off")


def _training(c: Change) -> str:
    if c.knob == "batch_size":
        return say("race", "batch_up") if c.new > c.old else say("race", "batch_down")
    if c.knob == "weight_decay":
        return say("race", "decay_up") if c.new > c.old else say("race", "decay_down")
    if c.new > 0 and not c.old:
        return say("race", "augment_on")
    if not c.new:
        return say("race", "augment_off")
    return say("race", "augment_more") if c.new > c.old else say("race", "augment_less")


def _architecture(c: Change) -> str:
    if c.knob == "vit_patch":
        count = (28 // c.new) ** 2
        return say("race", "patch_finer", count=count) if c.new < c.old else say("race", "patch_coarser", count=count)
    return say("race", "bigger" if c.new > c.old else "smaller", name=KINDS[c.sides[0]])


def look_for(change: Change) -> str:
    """What to look for after a turn, in plain words (vitdemo.views.race.look_for in the Expert view)."""
    if change.knob == "lr":
        return _lr(float(change.old), float(change.new))
    if change.knob in ("label_noise", "train_size", "extra_data"):
        return _data(change)
    if change.restart:
        return _architecture(change)
    return _training(change)


def side_text(side: SideView) -> str:
    """'26,368 pictures seen · 640 a second' (no steps or passes)."""
    return say("race", "side", images=f"{side.images:,}", speed=f"{side.images_per_s:,.0f}")


def knob_rows(view: RaceView) -> list[tuple[str, str]]:
    """The race's settings as (plain name, value) rows: a student's device shows them in place of the knobs."""
    k, data = view.knobs, DATASETS_SHORT.get(view.config.dataset, view.config.dataset)
    return [
        (knob_name("lr"), f"{k.lr:g}"), (knob_name("batch_size"), str(k.batch_size)),
        (knob_name("train_size"), f"{k.train_size:,}"), (knob_name("label_noise"), f"{k.label_noise:.0%}"),
        (knob_name("augment"), f"{k.augment:g}"), (knob_name("weight_decay"), f"{k.weight_decay:g}"),
        ("ViT", say("race", "vit_setup", patch=k.vit_patch, depth=k.vit_depth)),
        ("CNN", say("race", "cnn_setup", width=k.cnn_width, depth=k.cnn_depth)),
        ("Data", data + (" + the class's drawings" if k.extra_data else "")),
    ]  # fmt: skip
