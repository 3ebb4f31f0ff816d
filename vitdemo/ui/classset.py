"""The class's own handwriting in the app: the "stump the model" widget the Draw and Present pages show under a
drawing, and the Class set page (the drawings that fooled each model, who drew what, which model reads the class
best, the teacher's delete and export).

The rules (a label 0-9, no blank canvas, a few drawings a minute, teacher-only delete) live in vitdemo.classset.store:
this module asks and shows. Names are anyone's input: they go to markdown through `literal_markdown` and to
tables as plain cells.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo import paths
from vitdemo.checkpoints import LoadedModel
from vitdemo.classset import store as classset
from vitdemo.classset.store import ClassSet, Submission
from vitdemo.data import class_names
from vitdemo.explain.inference import Analysis
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.people import NotAllowed
from vitdemo.ui import people
from vitdemo.ui.shell import SHIPPED, Selection, registry, selection
from vitdemo.views import classset as views
from vitdemo.views import display
from vitdemo.views.charts import literal_markdown

GALLERY_MAX = 60  # drawings shown per gallery, newest first
THUMB_PX = 112  # each 28x28 input at 4x
_NOTICE = "_classset_notice"  # a message that survives the rerun after a delete
CSS = """<style>
[class*="st-key-vd_cs_pick"] [data-testid="stButtonGroup"] button {min-height: 3rem; min-width: 2.75rem; padding: 0 0.3rem;}
[class*="st-key-vd_cs_pick"] [data-testid="stButtonGroup"] button p {font-size: 1.35rem; font-weight: 700;}
[class*="st-key-vd_cs_item_"] [data-testid="stImage"] img {border: 1px solid #3a4150; border-radius: 4px;}
</style>"""
SCORE_COLUMNS = {
    "class-set accuracy": st.column_config.NumberColumn("class-set accuracy", format="percent"),
    "test accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
    "shipped": st.column_config.CheckboxColumn("shipped", help="a checkpoint that ships with the app"),
}


@st.cache_resource(show_spinner=False)
def _store(home: str) -> ClassSet:
    return ClassSet(home)


def store() -> ClassSet:
    """The class set in $VITDEMO_HOME, opened once per process."""
    return _store(str(paths.home().resolve()))


def is_teacher() -> bool:
    acting = people.actor()
    return acting is not None and acting.teacher


# --- the submit widget (Draw, Present) ---------------------------------------------------------------------
def model_names(sel: Selection) -> dict[str, str]:
    """kind -> the model as stored with an answer: 'shipped vit_mnist' or the run's picker label."""
    return {
        kind: f"shipped {Path(choice.path).stem}" if choice.key == SHIPPED else choice.label
        for kind, choice in sel.choices.items()
    }


def _digest(image: np.ndarray) -> str:
    """Which drawing this is (its 28x28 input), so the same drawing is not submitted twice by a double tap."""
    return hashlib.sha1(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def _submit(page: str, image: np.ndarray, analysis: Analysis, dataset: str, names: dict[str, str]) -> None:
    """The button's callback: store the drawing with the picked label, and leave the verdict for the rerun."""
    digest, label = _digest(analysis.pre.image), st.session_state.get(f"cs_label_{page}")
    acting = people.actor()
    try:
        if acting is None:
            raise classset.Refused("Give your name first, so that your drawings show as yours.")
        answers = classset.answers_from(analysis.predictions, names)
        sub = classset.submit(store(), image, label, acting, answers, dataset=dataset, page=page, pre=analysis.pre)
    except RegistryError as exc:  # refused (label, blank, too fast, full) or the file cannot be written
        st.session_state[f"_cs_result_{page}"] = (digest, "error", exc.public)
        return
    text = f"Added to the class set as drawing #{sub.id}. {views.verdict(sub.label, sub.answers)}"
    st.session_state[f"_cs_result_{page}"] = (digest, "success", text)
    st.session_state[f"_cs_done_{page}"] = digest
    st.session_state[f"cs_label_{page}"] = None


def submit_drawing(
    page: str,
    image: np.ndarray | None,
    analysis: Analysis | None,
    *,
    dataset: str | None = None,
    compact: bool = False,
) -> None:
    """Stump the model: pick the drawing's true label (ten big buttons, fine for a finger) and submit it to the
    class set; then it says whom the drawing fooled. Shows nothing until the drawing has predictions. `page`
    keeps the widget's keys apart ('draw', 'present'); `dataset` defaults to the sidebar's; `compact` puts it
    behind a popover button (the Present page has no room to spare)."""
    if image is None or analysis is None or analysis.pre.image is None or not analysis.predictions:
        return
    st.html(CSS)
    if compact:
        with st.popover("Stump the model", icon=":material/psychology_alt:", key=f"cs_pop_{page}"):
            _submit_form(page, image, analysis, dataset)
    else:
        with st.container(border=True, key=f"vd_cs_pick_{page}"):
            _submit_form(page, image, analysis, dataset)


def _submit_form(page: str, image: np.ndarray, analysis: Analysis, dataset: str | None) -> None:
    sel = selection()
    dataset = dataset or sel.dataset
    classes = class_names(dataset)
    digest = _digest(analysis.pre.image)
    thing = "digit" if dataset == "mnist" else "piece of clothing"
    st.markdown(f"**Stump the model** · which {thing} did you draw?")
    with st.container(key=f"vd_cs_pick_{page}_labels"):
        label = st.segmented_control(
            "The true label", list(range(len(classes))), format_func=lambda i: classes[i], key=f"cs_label_{page}",
            label_visibility="collapsed",
        )  # fmt: skip
    named = people.actor() is not None
    if not named:  # a student who has not said who they are (only where a teacher password is set)
        people.name_form()
    done = st.session_state.get(f"_cs_done_{page}") == digest
    st.button(
        "Submitted" if done else "Submit to the class set", key=f"cs_submit_{page}", type="primary",
        icon=":material/check:" if done else ":material/send:", disabled=label is None or done or not named,
        on_click=_submit, args=(page, image, analysis, dataset, model_names(sel)),
        help="Saved with your name, so the class can test every model on its own handwriting.",
    )  # fmt: skip
    result = st.session_state.get(f"_cs_result_{page}")
    if result is not None and result[0] == digest:
        (st.success if result[1] == "success" else st.error)(result[2])


# --- the Class set page --------------------------------------------------------------------------------------
def show_notice() -> None:
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(notice)


def _delete(submission_id: int) -> None:
    acting = people.actor()
    try:
        if acting is None:
            raise NotAllowed("Only the teacher can delete drawings from the class set.")
        classset.delete(store(), submission_id, acting)  # checks that `acting` is the teacher
    except RegistryError as exc:  # not the teacher, already deleted, or the file cannot be written
        st.session_state["_classset_problem"] = exc.public
        return
    st.session_state[_NOTICE] = f"Drawing #{submission_id} was deleted from the class set."


def _tile(cs: ClassSet, sub: Submission, teacher: bool) -> None:
    with st.container(width=THUMB_PX + 48, gap=None, key=f"vd_cs_item_{sub.id}"):
        try:
            st.image(display.upscale(cs.input_image(sub), THUMB_PX), width=THUMB_PX)
        except (OSError, ValueError):
            st.caption("(its image is missing)")
        st.caption(literal_markdown(views.caption(sub)))
        if sub.answers:
            st.caption(literal_markdown(views.answers_line(sub)))
        if teacher:
            with st.popover("Delete", icon=":material/delete:", key=f"cs_pop_{sub.id}"):
                st.button(
                    f"Delete drawing #{sub.id}", key=f"cs_delete_{sub.id}", on_click=_delete, args=(sub.id,),
                    type="primary",
                )  # fmt: skip


def gallery(cs: ClassSet, subs: list[Submission], teacher: bool) -> None:
    """The drawings that fooled the ViT, the CNN or both (or all of them), newest first; the teacher can delete."""
    problem = st.session_state.pop("_classset_problem", None)
    if problem:
        st.error(problem)
    groups = views.galleries(subs)
    pick = st.segmented_control(
        "Show", list(views.GALLERIES), format_func=lambda k: f"{views.GALLERIES[k][0]} ({len(groups[k])})",
        default="vit", required=True, key="cs_gallery",
    )  # fmt: skip
    shown = groups[pick or "all"]
    if not shown:
        st.caption("None yet: can you draw a digit that fools it?")
        return
    with st.container(horizontal=True, gap="small", key="vd_cs_gallery"):
        for sub in shown[:GALLERY_MAX]:
            _tile(cs, sub, teacher)
    if len(shown) > GALLERY_MAX:
        st.caption(f"The newest {GALLERY_MAX} of {len(shown)} drawings.")


def counts(subs: list[Submission]) -> None:
    """How many drawings of each digit, and by whom, with how many fooled each model."""
    left, right = st.columns(2, gap="large")
    left.dataframe(views.label_frame(subs), hide_index=True, key="cs_labels")
    right.dataframe(views.people_frame(subs), hide_index=True, key="cs_people")


def leaderboard(cs: ClassSet, dataset: str) -> None:
    """Every finished run and shipped model scored on the class set, best first (cached until the set changes)."""
    from vitdemo.classset.scores import score_table

    slot = st.empty()  # a progress bar while models are scored (seconds: each new drawing scores them all again)
    label = "Scoring the models on the class set…"
    done = lambda share: slot.progress(min(1.0, share), text=label)  # noqa: E731
    try:
        rows = score_table(cs, registry(), dataset, shipped_dir=paths.shipped_dir(), progress=done)
    finally:
        slot.empty()
    message = views.scores_message(rows)
    if message:
        st.info(message, icon=":material/draw:")
        return
    frame = views.scores_frame(rows)
    if not frame["note"].any():  # a note only says why a model could not be scored
        frame = frame.drop(columns="note")
    st.dataframe(frame, hide_index=True, column_config=SCORE_COLUMNS, key="cs_scores")
    st.caption("Class-set accuracy: the share of the class's drawings a model reads right; test accuracy is on MNIST.")


def export_button(cs: ClassSet, dataset: str) -> None:
    """The teacher's download: the set in MNIST's layout, built when the button is pressed."""
    from vitdemo.classset.export import IMAGES_NAME, export_zip

    st.download_button(
        "Download the class set (.zip)", data=lambda: export_zip(cs, dataset).data,
        file_name=f"class-set-{dataset}.zip", mime="application/zip", icon=":material/download:",
        on_click="ignore", key="cs_export",
    )  # fmt: skip
    st.caption(f"MNIST's layout ({IMAGES_NAME} and its labels), every drawing as a PNG and a CSV of who drew what.")


def evaluation_panel(loaded: LoadedModel, key: str = "cs_eval") -> None:
    """For the Evaluate page: one model's accuracy on the class set, and the drawings it misread."""
    from vitdemo.classset.data import as_split
    from vitdemo.evaluate import score_checkpoint

    data = as_split(store(), loaded.meta.dataset)
    if not len(data):
        st.caption("The class set is empty: submit drawings on the Draw page to test the models on them.")
        return
    scores = score_checkpoint(loaded, data.split)
    wrong = np.flatnonzero(scores.preds != scores.labels)  # (k,)
    st.metric("Class-set accuracy", f"{scores.accuracy:.1%}", help=f"{len(data)} drawings by the class")
    if len(wrong):
        with st.container(horizontal=True, gap="small", key=f"vd_{key}_wrong"):
            for i in wrong[:24]:
                image = display.upscale(data.split.images[i].numpy(), 84)
                st.image(image, caption=f"#{data.ids[i]}: {scores.labels[i]} read as {scores.preds[i]}", width=84)
