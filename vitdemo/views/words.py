"""The Simple view's words: every sentence a student reads in the Simple view, by page, in one table, so that a
test can check each reads plainly to a 15-year-old (`tests/test_words.py`: Flesch reading ease and grade, with
the figures printed). The Expert view keeps the pages' own technical sentences; where a page has both, it asks
`vitdemo.ui.view.pick(say(...), technical)`. No parameter counts, timings or method names here: those go in a
help tooltip, or stay in the Expert view. Placeholders ({name}) are filled by `say`.
"""

from __future__ import annotations

from vitdemo.lesson.steps import STEPS

WORDS: dict[str, dict[str, str]] = {
    "lesson": {
        **{f"step_{s.key}": s.sentence for s in STEPS},
        "view_help": "Off: plain words. On: every number and technical name.",
    },
    "draw": {
        "map_title": "where it looked",
        "vit_map": "The ViT cuts your drawing into small squares. Bright squares are the ones it used most to decide.",
        "cnn_map": "The CNN looks at every dot of ink. Bright dots are the ones that pushed it most toward its answer.",
        "layers": "What the ViT looks at in each of its layers, from first to last. Brighter means more.",
        "calibrated": "When it says 90%, it is right about 9 times out of 10.",
        "not_calibrated": "These numbers show which answer it likes best. They do not say how often it is right.",
        "model_score": "It got {score} of the test pictures right.",
        "no_map": "This model cannot show where it looked.",
        "no_test_images": "The test pictures are not here yet. Choose Draw or Upload above.",
        "fusion_label": "Mix the ViT's views by",
        "fusion_help": "The ViT looks at your drawing in a few ways at once. Pick how to mix them into one map.",
        "ignore_label": "Hide the faintest links",
        "ignore_help": "Drop the weakest links between squares first. Higher: a sharper map of what the ViT used most.",
    },
    "hood": {
        "vit_intro": "The ViT cuts the picture into {count} small squares. Each square can look at all the others "
        "to find clues. Click a square to see where it looks.",
        "vit_intro_cnn": "This ViT first finds small patterns, the way the CNN does. Then it cuts what it found "
        "into {count} squares. Each square can look at all the others to find clues. Click a square to see where "
        "it looks.",
        "patch_maps": "Each small map is one step of the ViT. The brighter a square, the more the green square "
        "looks there. The top row mixes all of its views.",
        "cls_title": "Where the ViT looks before it answers, step by step",
        "cls_caption": "The ViT keeps one extra note where it builds its answer. Each map shows where that note "
        "looks in one step, from the first step to the last.",
        "heads_help": "Each step has a few views of the picture. Pick one, or see them all mixed.",
        "positions": "Each small square is one place in the picture. Red means two places feel alike to the ViT. "
        "Nobody told it where the squares sit, yet it found out: each square is red around its own place.",
        "near_help": "How alike squares that touch feel to the ViT. Near 1 means very alike.",
        "far_help": "How alike squares that do not touch feel to the ViT.",
        "stage_help": "The CNN works in steps. Each step finds bigger shapes than the one before.",
        "count_help": "How many of the step's maps to show. The busiest come first.",
        "features": "Each square shows what one of the CNN's pattern finders found in the picture. Bright means "
        "it found a lot. Early steps find lines and edges. Later steps find bigger parts.",
        "row_help": "Which row of squares to pick.",
        "vit_tab": "ViT: the squares",
        "cnn_tab": "CNN: the patterns",
        "grid_title": "The picture in {count} squares",
        "square_title": "Where the square in row {row}, column {col} looks",
        "all_views": "all views",
        "view_n": "view {n}",
        "step_n": "step {n}",
        "look_share": "how much it looks there",
        "views_label": "Views",
        "filters": "These are the small patterns the CNN's first step looks for. Red parts add to the answer. "
        "Blue parts take away.",
    },
    "evaluate": {
        "accuracy": "Right answers",
        "score": "Score (out of 1)",
        "score_help": "A mix of how often it is right for each class. 1 is perfect.",
        "errors": "Wrong answers (of {count})",
        "size": "Size",
        "size_help": "How many numbers the model learned. Bigger is not always better.",
        "matrix": "Each row is the true answer. Each column is what the model said. Click a square to see its "
        "pictures.",
        "trust_offer": "Does the map really show what the model uses? We hide the dots the map marks first, and "
        "see how fast the model loses its answer. Hiding random dots should hurt less. It takes up to a minute.",
        "trust_read": "The orange line should fall fast on the left and rise fast on the right. That means the "
        "map points at the dots the model really uses. It should beat the random map.",
        "trust_untrained": "A model that learned nothing should get a different map. A score near 0 means the map "
        "shows what the model learned.",
        "untrained_help": "Near 0 is good: the map comes from what the model learned.",
        "trust_deletion": "Hiding the marked dots first",
        "legend_model": "the map",
        "legend_random": "random dots",
        "legend_centre": "a blob in the middle",
        "trust_insertion": "Putting the marked dots back first",
        "calibration": "Each bar shows how often the model was right when it was this sure. Bars on the dashed "
        "line mean that when it says 90%, it is right 9 times out of 10.",
        "gallery_overlay": "The colours show where the model looked. Bright means it mattered more.",
        "compare_hint": "To see this run next to others, choose Compare runs above.",
        "calibration_help": "How far the model's sureness is from how often it is right. Lower is better.",
        "matrix_title": "Which answers it mixes up",
        "per_class_title": "Class by class",
        "col_precision": "right when it says it",
        "col_recall": "found",
        "col_f1": "score",
        "col_support": "pictures",
        "col_errors": "wrong",
        "help_precision": "Of the pictures it called this class, the share that really were.",
        "help_recall": "Of the pictures of this class, the share it found.",
        "help_f1": "A mix of the two shares before it. 1 is perfect.",
        "help_support": "How many test pictures show this class.",
        "help_errors": "How many pictures of this class it got wrong.",
    },
    "leaderboard": {
        "budget_missing": "This study is not here yet. Your teacher can add it.",
        "budget_broken": "This study cannot be shown right now. Your teacher can fix it.",
        "budget_caption": "Does a model need many labelled pictures? Each one here learned from only 100, 600, "
        "6,000 or all of them. The dashed lines first looked at the pictures without any labels.",
    },
    "lab": {
        "sweep_offer": "Both models try the same {count} test pictures, each one turned, moved, shrunk or made "
        "bolder. It takes a minute or two. After that, everyone can see it.",
    },
    "race": {
        "explainer": "Both models learn from the same pictures at the same time, and get the same time to think. "
        "The top chart shows their mistakes, which should go down. The bottom chart shows how many new "
        "pictures they get right, which should go up.",
        # the knobs: their labels, and their help first in plain words (the technical names follow in the tooltip)
        "knob_lr": "Learning speed",
        "knob_batch_size": "Pictures per step",
        "knob_weight_decay": "Keep weights small",
        "knob_augment": "Wobble the pictures",
        "knob_label_noise": "Wrong labels",
        "knob_train_size": "Training pictures",
        "knob_extra_data": "Class drawings",
        "knob_vit_patch": "ViT square size",
        "knob_vit_depth": "ViT layers",
        "knob_cnn_width": "CNN pattern finders",
        "knob_cnn_depth": "CNN layers",
        "help_lr": "How big a step both models take each time they learn. Turn it up a lot and watch the "
        "mistakes jump.",
        "help_batch_size": "How many pictures the models look at before each step. More: fewer, calmer steps.",
        "help_weight_decay": "A pull that keeps the models' numbers small, so they learn the pictures by heart less.",
        "help_augment": "Each training picture is turned, stretched and moved a little, at random. More is wilder.",
        "help_label_noise": "Some training pictures get the wrong name. Watch the models learn the wrong names by "
        "heart.",
        "help_train_size": "How many pictures both models learn from.",
        "help_extra_data": "The drawings your class sent in join the training pictures.",
        "setup_caption": "Each of these makes its model start again. Its old line stays, faded.",
        "dataset_label": "Which pictures (both start again)",
        "watching": "This is your teacher's race. You are watching it. Pick My own race above to steer one yourself.",
        "axis_seconds": "seconds",
        "axis_images": "pictures seen",
        "loss_title": "mistakes",
        "accuracy_title": "right on new pictures",
        "side": "{images} pictures seen · {speed} a second",
        "vit_setup": "squares of {patch} by {patch} dots, {depth} layers",
        "cnn_setup": "{width} pattern finders, {depth} layers",
        # what to look for after a turn (one per kind of turn)
        "lr_up_big": "Learning speed {ratio}: watch the mistakes jump, then settle down or blow up.",
        "lr_down_big": "Learning speed {ratio}: smaller steps. The mistakes line gets smoother and falls more slowly.",
        "lr_up": "Learning speed {ratio}: bigger steps. The mistakes may fall faster, or jump about more.",
        "lr_down": "Learning speed {ratio}: smaller steps, so the mistakes line gets calmer.",
        "noise_up": "Now {tenths} in 10 training pictures have the wrong name. The mistakes go up and stay up. "
        "At first the models still do well on new pictures. Then they do worse, as they learn the wrong names.",
        "noise_down": "The names are put right. Watch the mistakes fall back.",
        "size_down": "Fewer training pictures, so each one comes back more often. The mistakes dive, but the "
        "score on new pictures stops rising: the models learn the pictures by heart. The ViT suffers more.",
        "size_up": "More pictures to learn from. The score on new pictures climbs higher, the ViT's most.",
        "class_on": "Your class's drawings join the training pictures. Now the models also learn how your class "
        "writes.",
        "class_off": "Your class's drawings leave the training pictures.",
        "batch_up": "More pictures per step: fewer, calmer steps. The line gets smoother, but each picture "
        "teaches less.",
        "batch_down": "Fewer pictures per step: more steps that jump about. Each picture teaches more.",
        "decay_up": "A stronger pull keeps the numbers small, so the mistakes stay higher.",
        "decay_down": "A weaker pull. The models may fit the pictures more closely.",
        "augment_on": "Every picture is now turned, stretched and moved a bit. The mistakes rise, since the "
        "pictures got harder. The score on new pictures holds. It helps most when there are few pictures.",
        "augment_off": "No more wobble: easier pictures, so the mistakes drop. Does the score on new pictures "
        "go up too?",
        "augment_more": "More wobble: harder training pictures.",
        "augment_less": "Less wobble: easier training pictures.",
        "patch_finer": "The ViT starts again with {count} smaller squares a picture. It sees more detail, but each "
        "step takes longer. Its old line stays, faded.",
        "patch_coarser": "The ViT starts again with {count} bigger squares a picture. Each step is faster, but it "
        "sees less detail. Its old line stays, faded.",
        "bigger": "The {name} starts again, bigger. Watch how many pictures it sees each second fall. Then "
        "compare its new line with the faded old one on the pictures seen axis.",
        "smaller": "The {name} starts again, smaller. Watch how many pictures it sees each second rise. Then "
        "compare its new line with the faded old one on the pictures seen axis.",
    },
    "present": {
        "strip": "Learning now: {name}",
        "strip_round": "round {epoch} of {epochs}",
        "strip_right": "{right} of {count} right",
        "map_settings": "How the ViT's map is drawn.",
    },
    "read": {
        "title": "Read a number · one model draws a box round each digit, another writes what it sees",
    },
    "train": {
        "more_settings": "Your teacher may ask you to change these. You can leave them as they are.",
        "watch_before": "Before it learns: {right} of {count} right.",
        "watch_after": "After {rounds} through the pictures: {right} of {count} right.",
        "curve_wait": "The line of its mistakes shows after the first second.",
        "extra_help": "Also learn from the drawings your class sent in.",
    },
}


def say(page: str, key: str, **values: object) -> str:
    """The Simple view's sentence `key` of `page`, with its placeholders filled."""
    text = WORDS[page][key]
    return text.format(**values) if values else text


def share_right(acc: float) -> str:
    """A test accuracy as a student reads it: one decimal, never rounded up to a perfect score that the model
    did not reach (0.9956 -> '99.5%', 1.0 -> '100%')."""
    if acc >= 1.0:
        return "100%"
    return f"{int(round(acc * 1000, 6)) / 10:.1f}%"  # round first: 0.57 * 1000 is 569.999...


class _Typical(dict):
    """Typical values for the placeholders: a number where none is named here."""

    def __missing__(self, key: str) -> str:
        return "16"


TYPICAL = _Typical(score="98%", count="1,000", name="ViT", ratio="×10", images="26,368", speed="640")


def all_sentences() -> dict[str, list[str]]:
    """Every Simple sentence by page, placeholders filled with typical values (for the readability test)."""
    return {page: [text.format_map(TYPICAL) for text in table.values()] for page, table in WORDS.items()}
