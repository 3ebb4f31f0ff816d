"""The Train form's widgets for the model's settings: every model family's (drawn from the registry's metadata), a
scikit-learn baseline's, and fine-tuning a pretrained encoder with a label budget.

Every widget's key is "tf_" + a key of vitdemo.views.forms (the rules live there); vitdemo.ui.train lays out
the form and calls `family_fields` for these families.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

from vitdemo import families, paths
from vitdemo.config import ARCHS
from vitdemo.families import vocab
from vitdemo.families.spec import Setting
from vitdemo.runconfig import PRETRAIN_METHODS
from vitdemo.views import forms, teachers
from vitdemo.views.names import kind_name

FORM_PREFIX = "tf_"
ENCODER_CACHE_S = 10  # the encoder list is read from checkpoint headers at most this often


def encoder_choices() -> dict[str, forms.EncoderChoice]:
    """The encoders a fine-tune may start from: shipped ones, then those pretrain runs made (cached per pair of
    folders: a server whose $VITDEMO_CHECKPOINTS or $VITDEMO_HOME changes never shows another folder's list)."""
    return _encoder_choices(str(paths.shipped_dir().resolve()), str(paths.home().resolve()))


@st.cache_data(ttl=ENCODER_CACHE_S, show_spinner=False)
def _encoder_choices(shipped: str, home: str) -> dict[str, forms.EncoderChoice]:
    del shipped, home  # the cache key: server_encoders reads the same folders
    return forms.server_encoders()


@st.cache_data(ttl=60, show_spinner=False)
def _weights_cached(arch: str) -> bool:
    from vitdemo.models.transfer import hub_checkpoints_dir, weights_filename

    return (hub_checkpoints_dir() / weights_filename(arch)).is_file()


def model_widgets(kind: str) -> None:
    """A model family's settings as widgets, three to a row, drawn from their metadata (vitdemo.families): a
    family added to the registry gets its fields here without a line of page code. Keys: "tf_" + vitdemo.views.forms
    keys ("tf_vit_depth")."""
    fam = families.get(kind)
    fields = list(vocab.form_fields(fam.config, kind).items())
    for row in range(0, len(fields), 3):
        for column, (key, (f, s)) in zip(st.columns(3), fields[row : row + 3], strict=False):
            _widget(column, FORM_PREFIX + key, f, s)
    if fam.blurb:
        st.caption(fam.blurb)
    arch = st.session_state.get(FORM_PREFIX + "transfer_arch")
    if kind == "transfer" and st.session_state.get(FORM_PREFIX + "transfer_pretrained") and arch in ARCHS:
        st.caption(forms.transfer_weights_note(arch, _weights_cached(arch)))


def _widget(column, key: str, f: dataclasses.Field, s: Setting) -> None:
    """One setting's widget: a select box for choices, a tick box, a text box for layer sizes, else a number."""
    label, kind = s.label[0].upper() + s.label[1:], vocab.value_type(f)
    helptext = s.help or None
    if s.choices:
        names = dict(zip(s.choices, s.shown or map(str, s.choices), strict=True))
        column.selectbox(label, list(s.choices), key=key, format_func=names.get, help=helptext)
    elif kind is bool:
        column.checkbox(label, key=key, help=helptext)
    elif kind is tuple:
        column.text_input(label, key=key, help=helptext)
    else:
        column.number_input(label, min_value=s.minimum, step=s.step, key=key, help=helptext)


def _classic_fields() -> None:
    k = FORM_PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Algorithm", list(forms.CLASSIC_NAMES), format_func=forms.CLASSIC_NAMES.get, key=k + "classic_kind")
    kind = st.session_state.get(k + "classic_kind")
    if kind == "logreg":
        c2.number_input("C (inverse regularisation)", min_value=0.0001, format="%.4f", key=k + "logreg_c")
    elif kind == "svm":
        c2.number_input("C", min_value=0.0001, format="%.4f", key=k + "svm_c")
        c3.number_input("PCA components", min_value=2, max_value=784, step=10, key=k + "pca_components")
    elif kind == "knn":
        c2.number_input("Neighbours", min_value=1, max_value=50, step=1, key=k + "n_neighbors")
    elif kind == "forest":
        c2.number_input("Trees", min_value=1, max_value=500, step=10, key=k + "n_estimators")
        c3.number_input("Tree depth", min_value=1, max_value=40, step=1, key=k + "max_depth")
    st.caption("Fitted once on the CPU with scikit-learn, saved without pickle, scored on the test images.")


def _encoder_label(key: str, choices: dict[str, forms.EncoderChoice]) -> str:
    if key.startswith(forms.NEW_ENCODER):
        method = key[len(forms.NEW_ENCODER) :]
        return f"Pretrain a new {kind_name(PRETRAIN_METHODS[method])} with {method.upper()} first (takes minutes)"
    return choices[key].label if key in choices else f"{key} (not on this server)"


def _finetune_fields(model_fields: Callable[[str], None]) -> None:
    k = FORM_PREFIX
    choices = encoder_choices()
    options = [*choices, *(forms.NEW_ENCODER + m for m in PRETRAIN_METHODS)]
    current = st.session_state.get(k + "encoder")
    if current not in options:
        st.session_state[k + "encoder"] = options[0]
    st.selectbox("Encoder", options, format_func=lambda key: _encoder_label(key, choices), key=k + "encoder",
                 help="pretrained without labels: MAE for a ViT, SimCLR for a CNN")  # fmt: skip
    key = st.session_state[k + "encoder"]
    c1, c2 = st.columns(2)
    c1.checkbox("Linear probe (train only the head)", key=k + "probe", help="the encoder stays frozen")
    if key.startswith(forms.NEW_ENCODER):
        method = key[len(forms.NEW_ENCODER) :]
        c2.number_input("Pretraining epochs", min_value=1, step=1, key=k + "pretrain_epochs")
        model_fields(PRETRAIN_METHODS[method])
    elif key in choices:
        m = choices[key].model
        st.caption(f"The run has the encoder's architecture ({kind_name(m.kind)}) and a new head for the labels.")
    st.caption(
        "Choose a label budget below (and the 'few labels' preset): a budget of 100 trains on 10 labelled images "
        "of each class, picked by the split seed; 1,000 held-out images are scored, never used to pick an epoch."
    )


def family_fields(kind: str, model_fields: Callable[[str], None]) -> None:
    """The settings of the form's choice `kind` (a key of forms.FAMILIES): a model family's, a scikit-learn
    baseline's, or a fine-tune's (whose `model_fields(kind)` draws the model an encoder is pretrained for)."""
    if kind == "finetune":
        _finetune_fields(model_fields)
    elif kind == "classic":
        _classic_fields()
    else:
        model_widgets(kind)


def teacher_field(cnn_runs: list) -> None:
    """A ViT's "learn from a teacher": none, the shipped CNN or a finished CNN run of the form's dataset (DeiT
    distillation, vitdemo.training.distill), with the sentence on why it helps."""
    from vitdemo.training.distill import teacher_path

    key, dataset = FORM_PREFIX + forms.TEACHER_KEY, str(st.session_state.get(FORM_PREFIX + "dataset") or "mnist")
    shipped = teacher_path(teachers.SHIPPED_TEACHER, dataset).is_file()
    choices = teachers.teacher_choices(cnn_runs, dataset, shipped=shipped)
    current = str(st.session_state.get(key) or "")
    options = [*choices, *([current] if current not in choices else [])]  # a stored run's teacher stays visible
    st.selectbox("Learn from a teacher", options, key=key, format_func=lambda v: teachers.teacher_label(v, choices),
                 help="DeiT's distillation token: a second token trained to give a CNN's answers")  # fmt: skip
    if st.session_state.get(key):
        st.caption(teachers.WHY)


def label_budget_field(column) -> None:
    """The label budget, for every trained family."""
    current = st.session_state.get(FORM_PREFIX + "labels")
    budgets = sorted({*forms.LABEL_BUDGETS, *([current] if isinstance(current, int) and current >= 0 else [])})
    column.selectbox(
        "Label budget", budgets, key=FORM_PREFIX + "labels",
        format_func=lambda n: "all labels" if not n else f"{n:,} labels",
        help="train on a class-balanced subset of this many labelled images",
    )  # fmt: skip
