"""The Simple view reads plainly to a 15-year-old (issue 24): every sentence of vitdemo.views.words, by page,
measured with textstat (Flesch reading ease and Flesch-Kincaid grade), the figures printed (pytest -s); and the
words a student should not meet in the Simple view (parameter counts, timings, method names) are not in it."""

from __future__ import annotations

import re
from pathlib import Path

import textstat  # requirements-dev.txt

from vitdemo import families
from vitdemo.views import words

PAGE_EASE = 60.0  # Flesch reading ease of a page's Simple words: 60-70 is "plain English" (ages 13-15)
PAGE_GRADE = 9.0  # Flesch-Kincaid grade of a page's Simple words: a 15-year-old is in grade 9 or 10
ENTRY_GRADE = 11.0  # no single entry above this (one long word in a short sentence swings a grade a lot)
EXPERT_WORDS = re.compile(
    r"\b(params|parameters?|ms|AUC|Petsiuk|Adebayo|class token|token|attention rollout|integrated gradients|"
    r"rollout|head fusion|logits?|cosine|embedding|convolution|MLP ratio|label smoothing|onecycle|ReLU|"
    r"calibrat\w*|F1|macro|Spearman|SimCLR|MAE)\b",
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
        p.read_text(encoding="utf-8") for p in [*REPO.glob("vitdemo/ui/*.py"), *REPO.glob("app_pages/*.py")]
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
