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
    },
    "hood": {
        "vit_intro": "The ViT cuts the picture into {count} small squares. Each square can look at all the others "
        "to find clues. Click a square to see where it looks.",
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
        "calibration": "Each bar shows how often the model was right when it was this sure. Bars on the dashed "
        "line mean that when it says 90%, it is right 9 times out of 10.",
        "gallery_overlay": "The colours show where the model looked. Bright means it mattered more.",
        "compare_hint": "To see this run next to others, choose Compare runs above.",
        "calibration_help": "How far the model's sureness is from how often it is right. Lower is better.",
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
    },
    "train": {
        "more_settings": "Your teacher may ask you to change these. You can leave them as they are.",
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


def all_sentences() -> dict[str, list[str]]:
    """Every Simple sentence by page, placeholders filled with typical values (for the readability test)."""
    sample = {"score": "98%", "count": "1,000"}
    return {page: [text.format(**sample) for text in table.values()] for page, table in WORDS.items()}
