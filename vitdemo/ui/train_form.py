"""The Train form's widgets for the families beyond the ViT and the CNN: the linear model, the MLP, an ImageNet
network (transfer), a scikit-learn baseline, and fine-tuning a pretrained encoder with a label budget.

Every widget's key is "tf_" + a key of vitdemo.views.forms (the rules live there); vitdemo.ui.train lays out
the form and calls `family_fields` for these families.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from vitdemo import paths
from vitdemo.config import ARCHS, LinearConfig
from vitdemo.families import PRETRAIN_METHODS
from vitdemo.views import forms
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


def _linear_fields() -> None:
    n = 28 * 28 * LinearConfig().num_classes + LinearConfig().num_classes
    st.caption(f"Every pixel votes for every class with one weight: 784 pixels -> 10 classes, {n:,} weights.")


def _mlp_fields() -> None:
    k = FORM_PREFIX
    c1, c2 = st.columns([2, 1])
    c1.text_input("Hidden layers", key=k + "mlp_hidden", help="layer sizes, e.g. 256,128 (1 to 6 layers)")
    c2.number_input("Dropout", min_value=0.0, step=0.05, key=k + "mlp_dropout")


def _transfer_fields() -> None:
    k = FORM_PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Network", list(ARCHS), key=k + "arch", help="torchvision's ImageNet networks")
    c2.number_input("Input size (px)", min_value=32, max_value=224, step=16, key=k + "image_px",
                    help="the 28 px digits are upscaled to this (AlexNet needs 64 or more)")  # fmt: skip
    c3.radio("Train", ["all", "head"], key=k + "transfer_finetune", horizontal=True,
             format_func={"all": "whole network", "head": "new head only"}.get)  # fmt: skip
    st.checkbox("ImageNet weights", key=k + "transfer_pretrained", help="untick: the same network from scratch")
    arch = st.session_state.get(k + "arch")
    if st.session_state.get(k + "transfer_pretrained") and arch in ARCHS:
        st.caption(forms.transfer_weights_note(arch, _weights_cached(arch)))


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
    """The model settings of `kind` (a key of forms.FAMILIES other than vit and cnn); `model_fields(kind)` draws
    a ViT's or a CNN's (for an encoder the run pretrains)."""
    draw = {"linear": _linear_fields, "mlp": _mlp_fields, "transfer": _transfer_fields, "classic": _classic_fields}
    if kind == "finetune":
        _finetune_fields(model_fields)
    elif kind in draw:
        draw[kind]()


def label_budget_field(column) -> None:
    """The label budget, for every trained family."""
    current = st.session_state.get(FORM_PREFIX + "labels")
    budgets = sorted({*forms.LABEL_BUDGETS, *([current] if isinstance(current, int) and current >= 0 else [])})
    column.selectbox(
        "Label budget", budgets, key=FORM_PREFIX + "labels",
        format_func=lambda n: "all labels" if not n else f"{n:,} labels",
        help="train on a class-balanced subset of this many labelled images",
    )  # fmt: skip
