"""The Present page's widgets: one screen for a projector (the canvas, both answers with their probability bars
and both explanations, no scrolling), the join panel that brings the students' devices in and, while a run
trains, the "watch it learn" strip (its ten watched test images and its latest loss)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vitdemo.explain.inference import Analysis, Prediction
from vitdemo.runs import milestones as run_race
from vitdemo.runs.dbfile import RegistryError
from vitdemo.training.watch import WatchRow
from vitdemo.ui import classset as classset_ui
from vitdemo.ui import draw, view
from vitdemo.ui.shell import registry, stop_on_failure
from vitdemo.ui.watching import watch_row
from vitdemo.views import classset as classset_views
from vitdemo.views import display, join, learning, standings
from vitdemo.views.charts import literal_markdown
from vitdemo.views.colors import overlay
from vitdemo.views.names import EXPLANATIONS, KINDS
from vitdemo.views.words import say

_SHOW_JOIN = "vd_show_join"
_SHOW_LEARN = "vd_show_learn"
LEARN_EVERY_S = 2.0  # the strip's refresh: one live query, even while no run trains
WALL_EVERY_S = 3.0  # the class wall's refresh: one read of the class set's version number
WALL_TILES = 8  # the newest drawings on the wall
MAP_PX = 280  # the overlays' own size; CSS scales them to the screen

# Sizes are in --vd-u: 1% of the height of the largest 16:9 screen that fits the window, so 1280x720 and
# 1920x1080 look the same, only larger. Portrait tablets and phones get a unit of their own.
CSS = """
<style>
[data-testid="stMainBlockContainer"]:has(.st-key-vd_present) {padding: 3.9rem 1.5rem 0.5rem 1.5rem;}
.st-key-vd_present [data-testid="stVerticalBlock"] {gap: 0.6rem;}
.st-key-vd_present {--vd-u: min(1vh, 0.6vw); --vd-label-max: calc(9.5 * var(--vd-u));}
.st-key-vd_present .st-key-vd_pad {--vd-canvas-max: calc(47 * var(--vd-u)); --vd-canvas-gap: 8px;}
.st-key-vd_present .st-key-vd_pad_buttons button {min-height: calc(6.6 * var(--vd-u));}
.st-key-vd_present .st-key-vd_pad_buttons button p {font-size: calc(2.6 * var(--vd-u));}
.st-key-vd_present .vd-pred {font-size: calc(3.6 * var(--vd-u)); line-height: 1;}
.st-key-vd_present .vd-label {  /* on the same line as "ViT predicts " (about 21u wide): the height is fixed */
  font-size: clamp(calc(5 * var(--vd-u)), calc((100cqi - 21 * var(--vd-u)) / var(--vd-chars, 1)), var(--vd-label-max));
  vertical-align: calc(-0.9 * var(--vd-u));
}
.st-key-vd_present .vd-conf {font-size: calc(2.7 * var(--vd-u)); margin: calc(0.8 * var(--vd-u)) 0 calc(0.6 * var(--vd-u)) 0;}
.st-key-vd_present .vd-wait {font-size: calc(3.2 * var(--vd-u)); font-weight: 600; opacity: 0.8; margin: 0;}
.vd-map {margin: 0; width: min(100%, calc(33 * var(--vd-u, 7.2px)));}
.vd-map img {display: block; width: 100%; height: auto; border-radius: 4px;}
.vd-scale {display: flex; align-items: center; gap: 0.5em; margin-top: 0.35em; font-size: calc(2.2 * var(--vd-u, 7.2px));}
.vd-scale-bar {flex: 1; height: 0.75em; border-radius: 0.2em;}
.vd-maptitle {font-size: calc(2.5 * var(--vd-u)); font-weight: 600; margin: 0 0 0.3em 0; white-space: nowrap;}
.vd-answer-row {display: flex; gap: calc(1.6 * var(--vd-u, 7.2px)); align-items: flex-start;}
.vd-answer-row .vd-bars {flex: 1 1 0; min-width: 0;}
.vd-answer-row .vd-look {flex: 0 1 auto; width: min(58%, calc(27 * var(--vd-u, 7.2px)));}
.vd-answer-row .vd-map {width: 100%;}
.vd-wall-text {font-size: calc(2.3 * var(--vd-u, 7.2px)); font-weight: 600; margin: 0 0 0.35em 0;}
.vd-wall-row {display: grid; grid-template-columns: repeat(8, minmax(0, 1fr)); gap: calc(0.8 * var(--vd-u, 7.2px));}
.vd-wall-tile {margin: 0; text-align: center; font-size: calc(1.8 * var(--vd-u, 7.2px)); line-height: 1.15; min-width: 0;}
.vd-wall-tile img, .vd-wall-missing {
  display: block; width: 100%; max-width: calc(6.5 * var(--vd-u, 7.2px)); aspect-ratio: 1; margin: 0 auto;
  image-rendering: pixelated; border: 1px solid #3a4150; border-radius: 3px; box-sizing: border-box;
}
.vd-wall-tile figcaption span {white-space: nowrap;}
.vd-join {display: flex; gap: 0.9rem; align-items: center; padding-bottom: 1rem;}  /* markdown's -1rem */
.vd-join-qr {flex: 0 0 auto; width: calc(18 * var(--vd-u)); line-height: 0;}
.vd-join-qr svg {width: 100%; height: auto; border-radius: 4px;}
.vd-join-lead {font-size: calc(2.3 * var(--vd-u)); opacity: 0.85;}
.vd-join-url {font-size: calc(2.8 * var(--vd-u)); font-weight: 700; overflow-wrap: break-word; color: #ff7a45;}
@media (max-aspect-ratio: 1/1) and (min-width: 640px) {
  .st-key-vd_present {--vd-u: min(0.8vh, 1.1vw);}
  .st-key-vd_present [data-testid="stHorizontalBlock"]:has(.st-key-vd_pad) {flex-wrap: wrap;}
  .st-key-vd_present [data-testid="stColumn"]:has(.st-key-vd_pad) {flex: 1 1 100% !important; width: 100% !important;}
  .st-key-vd_present .st-key-vd_pad {align-items: center;}  /* the canvas, its buttons and the join panel centred */
  .st-key-vd_present .st-key-vd_pad_buttons {margin: 0 auto;}
  .st-key-vd_present .st-key-vd_gallery, .st-key-vd_present .st-key-vd_present_more, .st-key-vd_present .vd-join {
    justify-content: center;
  }
}
@media (max-width: 639.98px) { .st-key-vd_present {--vd-u: 7.5px;} }
</style>
"""


def page_style() -> None:
    """The Present page's styling (a style-only st.html takes no room on the page)."""
    st.html(CSS)


def _toggle_join() -> None:
    st.session_state[_SHOW_JOIN] = not st.session_state.get(_SHOW_JOIN, True)


def join_button() -> None:
    """The button that shows or hides the join panel (in the canvas's button row)."""
    shown = st.session_state.get(_SHOW_JOIN, True)
    st.button(
        "Hide QR" if shown else "Join", icon=":material/qr_code_2:", key="present_join", on_click=_toggle_join,
        width="stretch", help="Show or hide the address and QR code students open to join",
    )  # fmt: skip


@st.cache_data(ttl=30, show_spinner=False)
def _lan_address() -> str:
    return join.lan_address()  # cached: the network rarely changes, and a host-name fallback may ask DNS


def join_panel() -> None:
    """The address students open, as text and as a QR code (hidden with the Join button)."""
    if st.session_state.get(_SHOW_JOIN, True):
        _join()


def _join() -> None:
    url = join.join_url(_lan_address(), int(st.get_option("server.port")), st.get_option("server.baseUrlPath") or "")
    st.markdown(  # markdown, not st.html: st.html's sanitizer drops the SVG
        f'<div class="vd-join"><div class="vd-join-qr">{join.qr_svg(url)}</div>'
        f'<div><div class="vd-join-lead">Join on your phone or laptop:</div>'
        f'<div class="vd-join-url">{join.breakable_url(url)}</div></div></div>',
        unsafe_allow_html=True,
    )
    warning = join.bind_warning(st.get_option("server.address"))
    if warning:
        st.warning(warning, icon=":material/wifi_off:")


def learn_strip() -> None:
    """While a run trains: its name, epoch and latest loss, and its answers on the ten watched test images,
    refreshed every LEARN_EVERY_S seconds in a fragment; hidden and shown again with its own button. Nothing
    while no run trains (one live query every LEARN_EVERY_S seconds)."""
    st.fragment(_learn_strip, run_every=LEARN_EVERY_S)()


def _toggle_learn() -> None:
    st.session_state[_SHOW_LEARN] = not st.session_state.get(_SHOW_LEARN, True)


def _learn_strip() -> None:
    with stop_on_failure():  # a fragment reruns on its own, outside the page's guard
        try:
            live = registry().live("")  # "": nobody's latest ended run, only the active ones
        except RegistryError:  # busy or damaged: the projector shows no error for a strip it can do without
            return
        running = [r for r in live.active if r.status == "running"]
        if not running:
            return
        run = max(running, key=lambda r: (r.started_at or 0.0, r.id))  # the newest
        shown = st.session_state.get(_SHOW_LEARN, True)
        with st.container(key="vd_learn"):
            text, button = st.columns([4, 1], vertical_alignment="center")
            label = "Hide" if shown else "Watch it learn"
            button.button(label, key="present_learn", on_click=_toggle_learn, type="tertiary",
                          icon=":material/model_training:", help="Show or hide the run training now")  # fmt: skip
            if shown:
                watched = live.watches.get(run.id)
                row = WatchRow.from_dict(watched)
                strip = learning.plain_strip_text if view.simple() else learning.strip_text
                text.caption(literal_markdown(strip(run, row)))
                watch_row(run, watched, font_size="calc(1.9 * var(--vd-u, 7.2px))", caption=False)


def model_panel(kind: str, prediction: Prediction | None, analysis: Analysis | None, problem: str | None) -> None:
    """One model's column: its answer, the probability of every class and where it looked."""
    if problem:
        st.markdown(f"### {KINDS[kind]}")
        st.warning(problem)
        return
    if prediction is None or analysis is None:
        st.markdown(f'<p class="vd-wait">{KINDS[kind]} is waiting for a drawing</p>', unsafe_allow_html=True)
        return
    label = prediction.classes[prediction.label]
    st.markdown(display.prediction_html(KINDS[kind], label, prediction.confidence), unsafe_allow_html=True)
    title = f"{KINDS[kind]}: probability of each class"
    bars = display.probability_bars_html(prediction.probs, prediction.classes, title=title)
    heat = explanation_image(prediction, analysis)
    looked = ""
    if heat is not None:
        name = f"{KINDS[kind]} · {EXPLANATIONS[kind]}"
        looked = f'<div class="vd-look"><p class="vd-maptitle">Where it looked</p>{display.heat_map_html(heat, title=name)}</div>'
    st.html(f'<div class="vd-answer-row">{bars}{looked}</div>')  # the bars beside the map: the wall fits below


def map_settings() -> None:
    """The ViT map's two settings, folded into a button under the canvas: the projector has no room to spare."""
    technical = "The attention rollout's two settings: head fusion and discard ratio"
    with st.popover("Map settings", icon=":material/tune:", help=view.pick(say("present", "map_settings"), technical)):
        draw.rollout_controls()


def explanation_image(prediction: Prediction, analysis: Analysis) -> np.ndarray | None:
    """The explanation on the drawing itself (on the 28x28 model input when it cannot be placed there)."""
    if prediction.heat is None:
        return None
    pre, heat = analysis.pre, display.shown_heat(prediction.kind, prediction.heat)
    on_drawing = display.heat_on_input(heat, pre)
    if on_drawing is None:
        return display.upscale(overlay(pre.image, heat, 0.5), MAP_PX)
    drawing = display.upscale(pre.stages["input"], max(on_drawing.shape))  # the same shape as on_drawing
    return display.pad_square(display.upscale(overlay(drawing, on_drawing, 0.5), MAP_PX))


def race_board(dataset: str) -> None:
    """The class race for the projector, folded into a button: each person's fastest run to 99%, top five."""
    with st.popover("Race to 99%", icon=":material/sports_score:"):
        board = run_race.standings(registry(), dataset)
        if not board:
            st.caption(standings.empty_race_text(run_race.TARGET))
        for device, finishes in board.items():
            st.caption(f"Fastest to {standings.milestone_label(run_race.TARGET)} {standings.device_label(device)}")
            frame = standings.standings_frame(finishes[:5])[["place", "who", "model", "time"]]
            st.dataframe(frame, hide_index=True)


def class_wall(dataset: str) -> None:
    """The live class wall: how many drawings the class submitted and how many fooled each model, over the newest
    ones; refreshed every WALL_EVERY_S seconds in a fragment, which reads one number (the set's version) unless
    something was submitted or deleted."""
    st.fragment(_class_wall, run_every=WALL_EVERY_S)(dataset)


def _class_wall(dataset: str) -> None:
    with stop_on_failure():
        cs = classset_ui.store()
        try:
            version = cs.version()
        except RegistryError:  # busy or damaged: the projector shows no error for a wall it can do without
            return
        st.html(_wall_html(str(cs.home), dataset, version))


@st.cache_data(show_spinner=False, max_entries=8)
def _wall_html(home: str, dataset: str, version: int) -> str:
    """The wall for one version of the class set (built again only when the set changes)."""
    del home, version  # part of the cache key only
    cs = classset_ui.store()
    tiles = []
    for sub in cs.latest(dataset, WALL_TILES):
        try:
            uri = display.png_data_uri(cs.input_image(sub))  # (28, 28) uint8
        except (OSError, ValueError):
            uri = None
        tiles.append(classset_views.wall_tile_html(uri, sub))
    return classset_views.wall_html(classset_views.wall_text(cs.fooled_counts(dataset)), tiles)
