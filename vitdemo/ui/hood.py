"""The Under the hood page's widgets: the current input (the Draw page's last drawing, a test image or an upload),
then the ViT's attention and position embeddings and the CNN's feature maps and filters for it. The tensor work
is in vitdemo.explain.hood, the figures in vitdemo.views.hood_charts."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch
from streamlit.delta_generator import DeltaGenerator

from vitdemo.checkpoints import LoadedModel
from vitdemo.data import DataError, class_names, load_raw, to_input
from vitdemo.explain.hood import (
    class_token_attention,
    cnn_stages,
    first_filters,
    most_varied_channels,
    neighbour_similarity,
    patch_attention,
    position_similarity,
    vit_attention,
    with_head_mean,
)
from vitdemo.explain.lens import PROBE_IMAGES, Lens, cnn_lens, fit_probes, vit_lens
from vitdemo.preprocess.pipeline import normalize, preprocess
from vitdemo.results import cache as results_cache
from vitdemo.ui import shell, view
from vitdemo.ui.shell import test_split
from vitdemo.views import display, hood_charts
from vitdemo.views.hood_charts import DIVERGING
from vitdemo.views.messages import data_error_text
from vitdemo.views.names import dataset_name
from vitdemo.views.words import say

DRAW_KEY = shell.LAST_INPUT_KEY  # the Draw page leaves its last (28, 28) float input in [0, 1] here
SOURCES = {"drawing": "Your last drawing", "test": "A test image", "upload": "Upload an image"}
INPUT_PX = 260
CHART = {"displayModeBar": False}
PROBE_ENTRIES = 4  # checkpoints whose stage probes the server keeps (a few KB each)
STAGE_HELP = {  # the Expert tooltip of the CNN's stages, by design (vitdemo.families.cnn)
    "double": "The output of each stage: two 3x3 convolutions with batch norm and ReLU, before the max-pooling that "
    "halves the resolution for the next stage.",
    "lean": "The output of each stage: one convolution, then the max-pooling that halves the resolution, then batch "
    "norm and ReLU.",
}
STEM_NOTES = {
    "conv": " (through a small conv stem first, so each token also sees a few pixels of its neighbours)",
    "cnn": " (through two CNN stages first, so each token carries the strokes and textures around it)",
}


def vit_intro(stem: str, squares: int) -> str:
    """Under the hood's first sentence on a ViT: a hybrid (`stem` "cnn", two CNN stages before its squares) is
    said to find small patterns first, as the shipped Fashion-MNIST ViT does; the others cut the picture itself."""
    return say("hood", "vit_intro_cnn" if stem == "cnn" else "vit_intro", count=squares)


# --- input -------------------------------------------------------------------------------------------------
def _last_drawing() -> np.ndarray | None:
    """The Draw page's last model input, if this session has one and it is a (28, 28) image."""
    found = st.session_state.get(DRAW_KEY)
    if found is None:
        return None
    image = np.asarray(found)
    if image.shape != (28, 28):
        return None
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else np.clip(image.astype(np.float32), 0, 1)


def _new_test_index(key: str, n: int) -> None:
    st.session_state[key] = int(np.random.default_rng().integers(n))


def _test_image(dataset: str) -> tuple[np.ndarray | None, str]:
    try:
        split = test_split(dataset)
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return None, ""
    key = f"hood_test_index_{dataset}"
    if key not in st.session_state:
        _new_test_index(key, len(split))
    index = int(st.session_state[key])
    st.button(
        "Another test image", icon=":material/casino:", on_click=_new_test_index, args=(key, len(split)),
        key="hood_next_test",
    )  # fmt: skip
    truth = class_names(dataset)[int(split.labels[index])]
    image = split.images[index].numpy().astype(np.float32) / 255.0  # (28, 28) in [0, 1]
    return image, f"{dataset_name(dataset)} test image #{index}, labelled {truth}"


def _uploaded() -> tuple[np.ndarray | None, str]:
    file = st.file_uploader(
        "A PNG or JPG of one digit or piece of clothing", type=["png", "jpg", "jpeg"], key="hood_upload"
    )
    if file is None:
        st.info("Upload a picture to look inside the models with it.")
        return None, ""
    try:
        pre = preprocess(file.getvalue())
    except ValueError as exc:
        st.error(f"{file.name} could not be used: {exc}")
        return None, ""
    if pre.empty or pre.image is None:
        st.warning(f"{file.name}: {pre.message}")
        return None, ""
    return pre.image, f"your upload {file.name}, prepared as on the Draw page"


def current_input(dataset: str) -> tuple[np.ndarray | None, str]:
    """The (28, 28) input in [0, 1] the page looks at, and one phrase saying what it is (None, '' while there is
    none). The Draw page's last drawing comes first when the session has one."""
    drawing = _last_drawing()
    options = [k for k in SOURCES if k != "drawing" or drawing is not None]
    seen = drawing.tobytes() if drawing is not None else None
    if seen is not None and seen != st.session_state.get("hood_seen_drawing"):
        st.session_state["hood_source"] = "drawing"  # a new drawing since the last visit: show it
    st.session_state["hood_seen_drawing"] = seen
    if st.session_state.get("hood_source") not in options:
        st.session_state["hood_source"] = options[0]
    source = st.segmented_control(
        "Input", options, format_func=SOURCES.get, required=True, key="hood_source",
        help="The 28x28 image both models see: your last drawing from the Draw page, a test-set image or a picture.",
    )  # fmt: skip
    if source == "drawing" and drawing is not None:
        return drawing, "your last drawing on the Draw page"
    if source == "upload":
        return _uploaded()
    return _test_image(dataset)


def _model_input(image: np.ndarray, loaded: LoadedModel) -> torch.Tensor:
    return normalize(image, loaded.meta.mean, loaded.meta.std)  # (1, 1, 28, 28)


def _prediction(loaded: LoadedModel, x: torch.Tensor) -> str:
    with torch.inference_mode():
        probs = loaded.probabilities(loaded.model(x))[0]
    k = int(probs.argmax())
    return f"predicts **{loaded.meta.classes[k]}** ({float(probs[k]):.0%})"


# --- ViT ---------------------------------------------------------------------------------------------------
def _patch_picker(image: np.ndarray, grid: int) -> tuple[int, int]:
    """The input with the patch grid; a click on a patch (or the two sliders) picks it. Starts in the middle."""
    row_key, col_key, last_key = "hood_patch_row", "hood_patch_col", "hood_patch_last"
    for key in (row_key, col_key):
        if key not in st.session_state or not 0 <= st.session_state[key] < grid:
            st.session_state[key] = grid // 2
    clicked = hood_charts.selected_patch(st.session_state.get("hood_grid"))
    if clicked is not None and clicked != st.session_state.get(last_key):
        st.session_state[row_key], st.session_state[col_key] = clicked
    st.session_state[last_key] = clicked
    picked = (int(st.session_state[row_key]), int(st.session_state[col_key]))
    fig = hood_charts.patch_grid_figure(image, grid, picked, height=INPUT_PX)
    st.plotly_chart(fig, key="hood_grid", on_select="rerun", selection_mode="points", config=CHART, width="content")
    st.slider(
        "Row", 0, grid - 1, key=row_key,
        help=view.tip(say("hood", "row_help"), "Row of the query patch (the token whose attention is shown)."),
    )  # fmt: skip
    st.slider("Column", 0, grid - 1, key=col_key, help="Column of the query patch.")
    return int(st.session_state[row_key]), int(st.session_state[col_key])


def _layer_labels(n: int) -> list[str]:
    return [f"layer {i + 1}" for i in range(n)]


def vit_section(loaded: LoadedModel | None, problem: str | None, image: np.ndarray) -> None:
    """Patches, where one patch looks, where the class token looks, and the learned position embeddings."""
    if loaded is None:
        st.warning(problem or "No ViT model is selected.")
        return
    cfg = loaded.meta.model_config
    x = _model_input(image, loaded)
    attn = vit_attention(loaded.model, x)  # (L, heads, T, T)
    L, H = attn.shape[:2]
    st.markdown(f"The ViT {_prediction(loaded, x)}.")
    st.caption(
        view.pick(
            vit_intro(cfg.stem, cfg.grid * cfg.grid),
            f"It cuts the image into {cfg.grid * cfg.grid} patches of {cfg.patch_size}x{cfg.patch_size} pixels (the "
            f"blue grid) and turns each into a token{STEM_NOTES.get(cfg.stem, '')}; {L} layers of "
            f"{H} attention heads then let every token gather "
            "information from the others. Click a patch (or move the sliders) to see where it looks.",
        )
    )
    left, right = st.columns([1, 2.4], gap="medium")
    with left:
        st.markdown(
            f"#### {view.pick(say('hood', 'grid_title', count=cfg.grid**2), f'The {cfg.grid}x{cfg.grid} patches')}"
        )
        row, col = _patch_picker(image, cfg.grid)
    with right:
        maps = with_head_mean(patch_attention(attn, row, col)).transpose(0, 1)  # (heads + 1, L, g, g)
        technical = f"Where patch (row {row}, column {col}) looks"
        st.markdown(f"#### {view.pick(say('hood', 'square_title', row=row, col=col), technical)}")
        if view.simple():  # views and steps, as the Simple sentences call heads and layers
            rows = [say("hood", "all_views"), *[say("hood", "view_n", n=h + 1) for h in range(H)]]
            cols, bar = [say("hood", "step_n", n=i + 1) for i in range(L)], say("hood", "look_share")
        else:
            rows = ["all heads", *[f"head {h + 1}" for h in range(H)]]
            cols, bar = [f"L{i + 1}" for i in range(L)], "share of its attention"
        fig = hood_charts.map_grid_figure(
            maps.numpy(), row_labels=rows, col_labels=cols, colorbar=bar, mark=(row, col), tile_px=80
        )
        st.plotly_chart(fig, key="hood_patch_attention", config=CHART)
        st.caption(
            view.pick(
                say("hood", "patch_maps"),
                f"Each small map is one layer (column L1 to L{L}) and one attention head (row): the brighter a "
                "patch, the more of its attention the green patch takes from there; the top row averages the heads.",
            )
        )
    _class_token(attn, H)
    _lens("ViT", vit_lens(loaded.model, x), loaded)
    _positions(loaded)


def _class_token(attn: torch.Tensor, heads: int) -> None:
    st.markdown(f"#### {view.pick(say('hood', 'cls_title'), 'Where the class token looks, layer by layer')}")
    options = list(range(-1, heads))
    if view.simple():
        label, name = (
            say("hood", "views_label"),
            lambda h: say("hood", "all_views") if h < 0 else say("hood", "view_n", n=h + 1),
        )
    else:
        label, name = "Heads", lambda h: "all heads (mean)" if h < 0 else f"head {h + 1}"
    head = st.segmented_control(
        label, options, format_func=name, default=-1,
        required=True, key="hood_cls_head",
        help=view.tip(say("hood", "heads_help"), "Which attention head of each layer to show; 'all heads' "
        "averages them (head fusion: mean)."),
    )  # fmt: skip
    cls = class_token_attention(attn)  # (L, heads, g, g)
    maps = cls.mean(dim=1) if head is None or head < 0 else cls[:, int(head)]  # (L, g, g)
    L = maps.shape[0]
    cols = min(L, 3)
    rows = -(-L // cols)
    grid = torch.full((rows * cols, *maps.shape[1:]), float("nan"))
    grid[:L] = maps
    labels = _layer_labels(L) + [""] * (rows * cols - L)
    fig = hood_charts.mosaic_figure(
        grid.numpy(), cols=cols, colorbar="share of attention", zmin=0.0, percent=True, tile_names=labels,
        height=rows * 230 + 20,
    )  # fmt: skip
    fig.update_layout(annotations=_tile_titles(labels, cols, maps.shape[1]))
    st.plotly_chart(fig, key="hood_cls", config=CHART)
    st.caption(
        view.pick(
            say("hood", "cls_caption"),
            "The class token is the extra token the answer is read from: each map shows, for one layer, what share "
            "of its attention goes to each patch of the input (read left to right, top to bottom: layer 1 to the "
            "last).",
        )
    )


def _tile_titles(labels: list[str], cols: int, size: int) -> list[dict]:
    """Annotations naming the tiles of a mosaic, above each tile."""
    out = []
    for i, label in enumerate(labels):
        if not label:
            continue
        r, c = divmod(i, cols)
        out.append(
            {"text": label, "x": c * (size + 1) + (size - 1) / 2, "y": r * (size + 1) - 0.9, "xref": "x", "yref": "y",
             "showarrow": False, "font": {"size": 14}}
        )  # fmt: skip
    return out


def _positions(loaded: LoadedModel) -> None:
    st.markdown("#### What the ViT learned about positions")
    sim = position_similarity(loaded.model)  # (N, g, g)
    g = sim.shape[-1]
    near, far = neighbour_similarity(sim)
    names = [f"patch row {i // g}, column {i % g}" for i in range(g * g)]
    text, m1, m2 = st.columns([3, 1, 1], gap="medium")
    text.caption(
        view.pick(
            say("hood", "positions"),
            f"Each of the {g * g} small squares belongs to one patch position and shows how alike its learned "
            "position embedding is to every other position's (red: alike, blue: opposite). Nobody told the model "
            f"that the patches form a {g}x{g} grid, yet it learned it: each square is reddest around its own place.",
        )
    )
    m1.metric(
        "Neighbours alike",
        f"{round(near, 2) + 0.0:+.2f}",  # + 0.0: no "-0.00"
        help=view.tip(
            say("hood", "near_help"),
            "Mean cosine similarity of the position embeddings of patches that touch (side by side or one "
            "above the other).",
        ),
    )
    m2.metric(
        "Other pairs",
        f"{round(far, 2) + 0.0:+.2f}",
        help=view.tip(say("hood", "far_help"), "Mean cosine similarity of every pair of positions that do not touch."),
    )
    fig = hood_charts.mosaic_figure(
        sim.numpy(), cols=g, colorbar="cosine similarity", colorscale=DIVERGING, zmin=-1.0, zmax=1.0,
        tile_names=names, height=520,
    )  # fmt: skip
    st.plotly_chart(fig, key="hood_positions", config=CHART)


# --- CNN ---------------------------------------------------------------------------------------------------
def cnn_section(loaded: LoadedModel | None, problem: str | None, image: np.ndarray) -> None:
    """The feature maps of each stage for the input, and the first layer's filters."""
    if loaded is None:
        st.warning(problem or "No CNN model is selected.")
        return
    x = _model_input(image, loaded)
    stages = cnn_stages(loaded.model, x)  # [(K_i, h_i, w_i)]
    st.markdown(f"The CNN {_prediction(loaded, x)}.")
    labels = [f"Stage {i + 1} ({a.shape[1]}x{a.shape[2]}, {a.shape[0]} filters)" for i, a in enumerate(stages)]
    picture, layer, amount = st.columns([1, 2, 1.4], gap="medium")
    picture.image(display.upscale(image, 112), caption="the input (28x28)", width=112, output_format="PNG")
    stage = layer.radio(
        "Layer", list(range(len(stages))), format_func=labels.__getitem__, key="hood_stage",
        help=view.tip(say("hood", "stage_help"), STAGE_HELP[loaded.meta.model_config.design]),
    )  # fmt: skip
    count = amount.select_slider(
        "Maps shown", [8, 16, 32, 64], value=16, key="hood_channels",
        help=view.tip(say("hood", "count_help"), "How many channels (filters) of the stage to show, those "
        "whose response varies most over the image first (by spatial standard deviation)."),
    )  # fmt: skip
    index = int(stage or 0)
    acts = stages[index]
    keep = most_varied_channels(acts, int(count))
    st.markdown(f"#### What stage {index + 1} sees")
    cols = 8
    fig = hood_charts.mosaic_figure(
        acts[keep].numpy(), cols=cols, colorbar="activation", zmin=0.0,
        tile_names=[f"filter {int(k) + 1}" for k in keep], height=-(-len(keep) // cols) * 95 + 30,
    )  # fmt: skip
    st.plotly_chart(fig, key="hood_features", config=CHART)
    st.caption(
        view.pick(
            say("hood", "features"),
            "Each square is what one filter of this stage found in the input (bright: a strong response); early "
            "stages answer to strokes and edges at full resolution, later ones to larger parts on a coarser grid.",
        )
    )
    probes = _probes(str(loaded.path or ""), loaded)
    if probes is not None:
        _lens("CNN", cnn_lens(loaded.model, probes, x), loaded)
    _filters(loaded)


def _lens(model: str, lens: Lens, loaded: LoadedModel) -> None:
    """When the model makes up its mind: each layer's answer, and the first layer that already gives the last."""
    classes = class_names(loaded.meta.dataset)
    st.markdown("#### When does it make up its mind?")
    st.plotly_chart(hood_charts.lens_figure(lens.probs, lens.names, classes), key=f"hood_lens_{model}", config=CHART)
    st.caption(hood_charts.lens_sentence(model, lens.names, lens.probs, lens.decided_at(), classes))


@dataclass
class _ProbeStore:
    """Stage probes by checkpoint file version, shared by every session of the process."""

    lock: threading.Lock
    probes: OrderedDict[tuple[str, int, str, str], list | None]


@st.cache_resource(show_spinner=False)
def _probe_store() -> _ProbeStore:
    return _ProbeStore(threading.Lock(), OrderedDict())


def _probe_images(dataset: str, data: str, loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The training images the probes are fitted on, normalised (N, 1, 28, 28), and their labels (N,)."""
    try:
        split = load_raw(dataset, train=True, data_dir=data)
    except DataError:
        return None
    x = to_input(split.images[:PROBE_IMAGES], loaded.meta.mean, loaded.meta.std)  # (N, 1, 28, 28)
    return x, split.labels[:PROBE_IMAGES]


def _probes(path: str, loaded: LoadedModel) -> list | None:
    """The stage probes of one checkpoint file version: kept by this server, read from the disk cache (the shipped
    CNN's ship in checkpoints/results/), or fitted here once with a progress bar (seconds) and kept on disk; one
    fitting at a time. None without the training images."""
    mtime = loaded.path.stat().st_mtime_ns if loaded.path is not None and loaded.path.exists() else 0
    key, store = (path, mtime, loaded.meta.dataset, shell.data_dir()), _probe_store()
    slot = st.empty()  # always: the page keeps one shape whether or not the probes were ready
    if key in store.probes:
        return store.probes[key]
    with store.lock:  # a second session asking for the same file waits for the first
        if key not in store.probes:
            store.probes[key] = _read_or_fit(path, loaded, slot)
            while len(store.probes) > PROBE_ENTRIES:
                store.probes.popitem(last=False)
    return store.probes[key]


def _read_or_fit(path: str, loaded: LoadedModel, slot: DeltaGenerator) -> list | None:
    found = _probe_images(loaded.meta.dataset, shell.data_dir(), loaded)
    if found is None:
        return None
    x, labels = found
    folders = results_cache.places()
    disk_key = results_cache.probes_key(path, labels) if path else None
    probes = results_cache.read_probes(folders, disk_key) if disk_key else None
    if probes is not None:
        return probes
    label = "Fitting a small probe after each stage…"
    bar = slot.progress(0.0, text=label)
    try:
        probes = fit_probes(loaded.model, x, labels, progress=lambda done: bar.progress(min(1.0, done), text=label))
    finally:
        slot.empty()
    if disk_key:
        with contextlib.suppress(OSError):  # a read-only home: fitted again by the next server
            results_cache.write_probes(folders[-1], disk_key, probes)
    return probes


def _filters(loaded: LoadedModel) -> None:
    st.markdown("#### The first layer's filters")
    filters = first_filters(loaded.model)  # (K, k, k)
    bound = float(filters.abs().max()) or 1.0
    k = filters.shape[-1]
    st.caption(
        view.pick(
            say("hood", "filters"),
            f"The {len(filters)} filters the first layer slides over the image, {k}x{k} pixels each: red weights "
            "add the pixel under them, blue ones subtract it, so red beside blue finds an edge.",
        )
    )
    cols = 16
    fig = hood_charts.mosaic_figure(
        filters.numpy(), cols=cols, colorbar="weight", colorscale=DIVERGING, zmin=-bound, zmax=bound,
        tile_names=[f"filter {i + 1}" for i in range(len(filters))], height=-(-len(filters) // cols) * 62 + 30,
    )  # fmt: skip
    st.plotly_chart(fig, key="hood_filters", config=CHART)
