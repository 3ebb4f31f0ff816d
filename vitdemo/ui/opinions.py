"""The Draw page's "Extra opinions": besides the ViT and the CNN, any finished run of the dataset (a classic
scikit-learn file, a linear, MLP, transfer, pretrained or another ViT or CNN checkpoint), each with its answer,
its probability bars and its explanation where it has one (vitdemo.explain.opinions does the work)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo import paths
from vitdemo.checkpoints import CheckpointError
from vitdemo.data import DataError
from vitdemo.explain.inference import Analysis
from vitdemo.explain.opinions import CLASSIC_SUFFIX, Opinion, classic_opinion, is_classic_file, torch_opinion
from vitdemo.ui.shell import STORE_ERRORS, Selection, load_model, registry
from vitdemo.views import charts, display
from vitdemo.views.colors import overlay
from vitdemo.views.messages import hide_folders
from vitdemo.views.names import CLASSIC_KINDS, DATASETS_SHORT, dataset_name, family_name, family_of, kind_name
from vitdemo.views.opinions import TEMPLATE_CAPTION, class_captions, opinion_html, template_images

PER_ROW = 3  # opinion cards side by side
MAP_PX = 140  # an opinion's explanation: 5x the model input
MAX_OPINIONS = 6


@dataclass(frozen=True)
class Source:
    """A model that can give an extra opinion: a finished run, or a shipped classic file not in the registry."""

    key: str  # multiselect value: "run:<id>" or "file:<file name>"
    title: str  # '#12 logreg-mnist (Logistic regression, MNIST)'
    path: str
    family: str  # a key of vitdemo.views.names.FAMILIES
    test_acc: float | None = None

    def label(self) -> str:
        return self.title + (f" · {self.test_acc:.2%}" if self.test_acc is not None else "")


def shipped_classic_sources(folder: Path, dataset: str, known: set[str]) -> list[Source]:
    """Shipped classic files named '<kind>_<dataset>.skops' (logreg_mnist.skops) that the registry does not list
    (`known`: resolved checkpoint paths), read by name only: scikit-learn is imported when one is picked."""
    found = []
    for path in sorted(folder.glob(f"*_{dataset}{CLASSIC_SUFFIX}")):
        kind = path.stem.removesuffix(f"_{dataset}")
        if kind in CLASSIC_KINDS and str(path.resolve()) not in known:
            title = f"{path.stem} ({kind_name(kind)}, {DATASETS_SHORT.get(dataset, dataset)}) · shipped"
            found.append(Source(f"file:{path.name}", title, str(path), "classic"))
    return found


@st.cache_data(ttl=5, show_spinner=False)
def sources(dataset: str, home: str, ckpt_dir: str) -> tuple[list[Source], str | None]:
    """Every finished run of `dataset` with a checkpoint file, best first, then unlisted shipped classic files;
    plus a problem sentence when the registry cannot be read."""
    problem = None
    try:
        runs = registry().leaderboard(dataset)
    except STORE_ERRORS as exc:  # the Draw page must keep working with the shipped models
        detail = getattr(exc, "public", None) or hide_folders(str(exc), home)
        runs, problem = [], f"The run registry could not be read ({detail}); only shipped files are offered."
    found = [
        Source(f"run:{r.id}", charts.run_title(r), r.checkpoint, family_of(r.kind, r.config), r.test_acc)
        for r in runs
        if r.checkpoint and Path(r.checkpoint).is_file()
    ]
    known = {str(Path(s.path).resolve()) for s in found}
    return found + shipped_classic_sources(Path(ckpt_dir), dataset, known), problem


def pick_sources(selection: Selection) -> list[Source]:
    """The multiselect of extra models (not the two already shown), remembered per dataset."""
    home, ckpt = str(paths.home().resolve()), str(paths.shipped_dir().resolve())
    offered, problem = sources(selection.dataset, home, ckpt)
    shown = {str(Path(c.path).resolve()) for c in selection.choices.values()}
    by_key = {s.key: s for s in offered if str(Path(s.path).resolve()) not in shown}
    key = f"draw_extra_{selection.dataset}"
    if key in st.session_state:  # a run deleted (or now shown as the ViT or CNN) since it was picked
        st.session_state[key] = [k for k in st.session_state[key] if k in by_key]
    picked = st.multiselect(
        "Add other models",
        list(by_key),
        format_func=lambda k: by_key[k].label(),
        key=key,
        max_selections=MAX_OPINIONS,
        placeholder="Pick finished runs: classic, linear, MLP, transfer, pretrained..."
        if by_key
        else "No other finished run for this dataset yet: train one on the Train page",
        help="Every finished run of this dataset with its model file, shipped baselines included. Each one answers "
        "for the same drawing, with its explanation where it has one.",
    )
    if problem:
        st.caption(problem)
    return [by_key[k] for k in picked]


@st.cache_resource(show_spinner=False, max_entries=8)
def _load_classic(path: str, mtime_ns: int) -> object:
    """A classic file once per process and file version; a failure is remembered as its message (a str)."""
    del mtime_ns  # part of the cache key only
    from vitdemo.models.classic import load_classic  # here: scikit-learn takes seconds to import

    try:
        return load_classic(path)
    except ValueError as exc:  # vitdemo.models.classic.ClassicError: missing, damaged or not allowed
        return hide_folders(str(exc), path)


def opinion_of(source: Source, image: np.ndarray, dataset: str, head_fusion: str, discard_ratio: float) -> Opinion:
    """The source's opinion on the (28, 28) model input. Raises CheckpointError with a message fit for the page
    (no folder in it)."""
    path = Path(source.path)
    if not path.is_file():
        raise CheckpointError(f"its model file {path.name} is missing")
    if is_classic_file(path):
        fitted = _load_classic(str(path.resolve()), path.stat().st_mtime_ns)
        if isinstance(fitted, str):
            raise CheckpointError(fitted)
        model_dataset = fitted.dataset
    else:
        loaded = load_model(path)
        model_dataset = loaded.meta.dataset
    if model_dataset != dataset:
        raise CheckpointError(f"it was trained on {dataset_name(model_dataset)}, not {dataset_name(dataset)}")
    if is_classic_file(path):
        return classic_opinion(fitted, image)
    return torch_opinion(loaded, image, head_fusion=head_fusion, discard_ratio=discard_ratio)  # type: ignore[arg-type]


def _verdict(label: str, truth: str | None) -> str:
    if truth is None:
        return ""
    ok = label == truth
    return f' · <span class="{"vd-right" if ok else "vd-wrong"}">{"right" if ok else "wrong"}</span>'


def opinion_card(source: Source, opinion: Opinion, analysis: Analysis, truth: str | None) -> None:
    """One extra model: its name, answer, probability bars and explanation, in a narrow column."""
    p = opinion.prediction
    label = p.classes[p.label]
    st.markdown(f"**{charts.literal_markdown(source.title)}**")
    st.caption(f"Family: {family_name(source.family)}")
    name = source.key.replace("run:", "#") if source.key.startswith("run:") else Path(source.path).stem
    st.markdown(opinion_html(name, label, p.confidence, _verdict(label, truth)), unsafe_allow_html=True)
    fig = display.probability_figure(p.probs, p.classes, height=210)
    config = {"displayModeBar": False, "staticPlot": True}
    st.plotly_chart(fig, config=config, key=f"xprobs_{source.key}", theme=None)
    if opinion.templates is not None:
        images = template_images(opinion.templates, p.label)
        st.image(images, caption=class_captions(p.classes, p.probs), width=images[0].shape[1])
        st.caption(TEMPLATE_CAPTION)
    elif p.heat is not None and analysis.pre.image is not None:
        shown = display.upscale(overlay(analysis.pre.image, display.shown_heat(p.kind, p.heat), 0.5), MAP_PX)
        st.image(shown, caption=opinion.explanation, width=MAP_PX)
        st.caption("Bright: mattered more to its answer.")
    else:
        st.caption("No explanation: this kind of model has no map of where it looked.")


def extra_opinions(
    selection: Selection, analysis: Analysis | None, head_fusion: str, discard_ratio: float, truth: str | None
) -> None:
    """Pick other runs; each one's answer for the current drawing, PER_ROW cards to a row."""
    picked = pick_sources(selection)
    if not picked:
        return
    if analysis is None or analysis.pre.image is None or analysis.pre.empty:
        st.caption("Draw something: the models you added answer too.")
        return
    for start in range(0, len(picked), PER_ROW):
        for source, column in zip(picked[start : start + PER_ROW], st.columns(PER_ROW, gap="medium"), strict=False):
            with column:
                try:
                    opinion = opinion_of(source, analysis.pre.image, selection.dataset, head_fusion, discard_ratio)
                except (CheckpointError, DataError, OSError, ValueError) as exc:
                    st.markdown(f"**{charts.literal_markdown(source.title)}**")
                    st.warning(f"No opinion from this model: {hide_folders(str(exc), source.path)}.")
                    continue
                opinion_card(source, opinion, analysis, truth)
