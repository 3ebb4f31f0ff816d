"""The Simple view reads plainly to a 15-year-old (issue 24): every sentence of vitdemo.views.words, by page,
measured with textstat (Flesch reading ease and Flesch-Kincaid grade), the figures printed (pytest -s); and the
words a student should not meet in the Simple view (parameter counts, timings, method names) are not in it."""

from __future__ import annotations

import re
from pathlib import Path

import textstat  # requirements-dev.txt

from vitdemo import families
from vitdemo.race.knobs import Change, Knobs, RaceConfig
from vitdemo.race.state import RaceView
from vitdemo.views import race as race_views
from vitdemo.views import race_words, words

PAGE_EASE = 60.0  # Flesch reading ease of a page's Simple words: 60-70 is "plain English" (ages 13-15)
PAGE_GRADE = 9.0  # Flesch-Kincaid grade of a page's Simple words: a 15-year-old is in grade 9 or 10
ENTRY_GRADE = 11.0  # no single entry above this (one long word in a short sentence swings a grade a lot)
ENTRY_WORDS = 4  # entries shorter than this are labels, measured with their page: a grade of two words is noise
# ("CNN layers" reads as grade 14.7: textstat counts C-N-N as three syllables)
EXPERT_WORDS = re.compile(
    r"\b(params|parameters?|ms|AUC|Petsiuk|Adebayo|class token|token|attention rollout|integrated gradients|"
    r"rollout|head fusion|logits?|cosine|embedding|convolution|MLP ratio|label smoothing|onecycle|ReLU|"
    r"calibrat\w*|F1|macro|Spearman|SimCLR|MAE|loss|epochs?|validation|batch size|learning rate|weight decay|"
    r"augmentation|patch(es)?|AdamW)\b",
    re.IGNORECASE,
)
REPO = Path(__file__).resolve().parent.parent


def test_the_simple_view_reads_plainly_page_by_page() -> None:
    failures = []
    print(f"\n{'page':<12} {'entries':>7} {'ease':>6} {'grade':>6}  (Flesch reading ease, Flesch-Kincaid grade)")
    for page, sentences in words.all_sentences().items():
        text = " ".join(sentences)
        ease, grade = textstat.flesch_reading_ease(text), textstat.flesch_kincaid_grade(text)
        print(f"{page:<12} {len(sentences):>7} {ease:>6.1f} {grade:>6.1f}")
        if ease < PAGE_EASE or grade > PAGE_GRADE:
            failures.append(f"{page}: ease {ease:.1f}, grade {grade:.1f}")
        for sentence in sentences:
            if len(sentence.split()) < ENTRY_WORDS:  # a label: measured with its page only
                continue
            if textstat.flesch_kincaid_grade(sentence) > ENTRY_GRADE:
                failures.append(f"{page}: grade {textstat.flesch_kincaid_grade(sentence):.1f}: {sentence}")
    assert not failures, failures


def test_the_simple_view_names_no_method_count_or_timing() -> None:
    found = [
        (page, s) for page, sentences in words.all_sentences().items() for s in sentences if EXPERT_WORDS.search(s)
    ]
    assert not found, found


def test_a_hard_sentence_would_fail_the_measure() -> None:
    """The measure can fail: the Expert caption the Simple view replaces under the CNN's map is far above the bar
    ("Integrated gradients: how much each pixel of ink adds to the predicted class, measured from a blank image...")."""
    expert = families.get("cnn").caption
    assert textstat.flesch_kincaid_grade(expert) > ENTRY_GRADE and textstat.flesch_reading_ease(expert) < PAGE_EASE
    assert EXPERT_WORDS.search(expert)


def test_every_simple_entry_is_used_by_a_page() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [*REPO.glob("vitdemo/ui/*.py"), *REPO.glob("vitdemo/views/*.py"), *REPO.glob("app_pages/*.py")]
        if p.name != "words.py"
    )
    unused = [
        f"{page}.{key}"
        for page, table in words.WORDS.items()
        for key in table
        if not key.startswith("step_")
        and f'"{key}"' not in source
        and f"'{key}'" not in source  # the steps' sentences: the lesson's banner
    ]
    assert not unused, unused


def test_a_score_is_never_rounded_up_to_perfect() -> None:
    # The Simple view said "It got 100% of the test pictures right" for a model at 99.56%.
    assert words.share_right(0.9956) == "99.5%" and words.share_right(0.9999) == "99.9%"
    assert words.share_right(1.0) == "100%" and words.share_right(0.5) == "50.0%"


# one turn of each knob each way (the architecture knobs start their side again)
TURNS = [
    Change("lr", 2e-3, 2e-2, ("cnn", "vit")), Change("lr", 2e-3, 5e-3, ("cnn", "vit")),
    Change("lr", 2e-3, 1e-3, ("cnn", "vit")), Change("lr", 2e-3, 2e-4, ("cnn", "vit")),
    Change("batch_size", 64, 256, ("cnn", "vit")), Change("batch_size", 64, 16, ("cnn", "vit")),
    Change("weight_decay", 0.05, 0.3, ("cnn", "vit")), Change("weight_decay", 0.05, 0.0, ("cnn", "vit")),
    Change("augment", 0.0, 1.0, ("cnn", "vit")), Change("augment", 1.0, 0.0, ("cnn", "vit")),
    Change("augment", 1.0, 2.0, ("cnn", "vit")), Change("augment", 2.0, 1.0, ("cnn", "vit")),
    Change("label_noise", 0.0, 0.3, ("cnn", "vit")), Change("label_noise", 0.3, 0.0, ("cnn", "vit")),
    Change("train_size", 5000, 500, ("cnn", "vit")), Change("train_size", 500, 5000, ("cnn", "vit")),
    Change("extra_data", "", "x.npz", ("cnn", "vit")), Change("extra_data", "x.npz", "", ("cnn", "vit")),
    Change("vit_patch", 7, 4, ("vit",), restart=True), Change("vit_patch", 7, 14, ("vit",), restart=True),
    Change("vit_depth", 3, 6, ("vit",), restart=True), Change("cnn_width", 16, 8, ("cnn",), restart=True),
    Change("cnn_depth", 2, 3, ("cnn",), restart=True),
]  # fmt: skip


def test_the_race_speaks_plainly_in_the_simple_view() -> None:
    """Every turn of a knob: its label and what to look for come from the Simple words (so the measure above
    reads them), with no technical name; the Expert view keeps its own ('lr ×10', 'the loss')."""
    simple = set(words.WORDS["race"].values())
    for turn in TURNS:
        label, sentence = race_words.knob_label(turn), race_words.look_for(turn)
        assert not EXPERT_WORDS.search(label) and not EXPERT_WORDS.search(sentence), (turn, label, sentence)
        assert any(sentence.startswith(t.split("{")[0]) for t in simple), sentence
        assert EXPERT_WORDS.search(race_views.look_for(turn) + race_views.knob_label(turn)) or turn.knob in (
            "extra_data", "train_size", "vit_depth", "cnn_width", "cnn_depth",
        ), turn  # fmt: skip
    view = RaceView(1, "ready", "", 0.0, RaceConfig(), Knobs(), (), ())
    rows = " ".join(f"{n} {v}" for n, v in race_words.knob_rows(view))
    assert not EXPERT_WORDS.search(rows) and "Learning speed" in rows
    layout = race_views.race_figure(view, "images", plain=True).to_dict()["layout"]
    titles = [layout[axis]["title"]["text"] for axis in ("yaxis", "xaxis2", "yaxis2")]
    assert titles == ["mistakes", "pictures seen", "right on new pictures"], titles


def test_under_the_hood_says_a_hybrid_vit_finds_patterns_before_it_cuts() -> None:
    """The shipped Fashion-MNIST ViT runs two CNN stages before its 16 squares: the Simple view said it 'cuts the
    picture into 16 small squares', which a teacher showing its pattern maps would have to correct."""
    from vitdemo.ui.hood import vit_intro

    hybrid, plain = vit_intro("cnn", 16), vit_intro("patch", 49)
    assert hybrid.startswith("This ViT first finds small patterns") and "16 squares" in hybrid
    assert plain.startswith("The ViT cuts the picture into 49 small squares") and vit_intro("conv", 49) == plain
