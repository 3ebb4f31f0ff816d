"""The Present page (AppTest) and the plain logic behind it: the join address and QR code, the drawing pad's
history, the HTML bars and heat maps."""

from __future__ import annotations

import html
import os
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from browser import DIGIT_STROKES, stroke_image
from test_app_draw import FakeCanvas, predictions, run_app

from vitdemo.config import TrainConfig
from vitdemo.runs import points
from vitdemo.runs.store import Registry
from vitdemo.training.watch import WatchRow
from vitdemo.views import display, join
from vitdemo.views.colors import colorscale
from vitdemo.views.sketch import MAX_GALLERY, MAX_STEPS, Drawing, Sketchbook, decode_png, encode_png

PRESENT = "app_pages/present.py"


# --- join address and QR code ---------------------------------------------------------------------------------
def test_lan_address_is_a_routable_address_or_the_host_name() -> None:
    found = join.lan_address()
    assert found
    assert not found.startswith("127.") and found not in ("0.0.0.0", "localhost")


def test_lan_address_falls_back_to_the_host_name_without_a_route() -> None:
    assert join.lan_address(probe=("256.0.0.1", 1)) == socket.gethostname()  # not an address: connect() fails


def test_join_url_has_the_port_the_base_path_and_brackets_for_ipv6() -> None:
    assert join.join_url("192.168.1.20", 8501) == "http://192.168.1.20:8501/"
    assert join.join_url("192.168.1.20", 8502, "/class/") == "http://192.168.1.20:8502/class/"
    assert join.join_url("fe80::1", 80) == "http://[fe80::1]:80/"


def test_breakable_url_breaks_only_between_parts() -> None:
    html = join.breakable_url("http://192.168.1.20:8501/")
    assert html == "http://<wbr>192.168.1.20<wbr>:8501/<wbr>"
    assert html.replace("<wbr>", "") == "http://192.168.1.20:8501/"
    assert join.breakable_url("http://[fe80::1]:80/").replace("<wbr>", "") == "http://[fe80::1]:80/"


def test_bind_warning_only_for_a_loopback_server() -> None:
    assert "--server.address 0.0.0.0" in join.bind_warning("127.0.0.1")
    assert join.bind_warning("localhost") is not None
    for reachable in (None, "", "0.0.0.0", "::", "192.168.1.20"):
        assert join.bind_warning(reachable) is None


def test_qr_svg_scales_to_its_box_and_names_the_url() -> None:
    svg = join.qr_svg("http://10.0.0.5:8501/")
    assert svg.startswith("<svg") and 'viewBox="0 0' in svg
    assert "width=" not in svg.split(">")[0]  # no fixed size: CSS sizes it
    assert "http://10.0.0.5:8501/" in svg  # its title
    assert svg != join.qr_svg("http://10.0.0.6:8501/")


# --- the drawing pad's history -----------------------------------------------------------------------------------
def _drawing_objects(n: int) -> tuple[dict, ...]:
    return tuple({"type": "Path", "n": i} for i in range(n))


def _image(seed: int) -> np.ndarray:
    return stroke_image([[(0.1 + 0.05 * (seed % 10), 0.2), (0.5, 0.8)]])


def test_png_round_trip_is_lossless() -> None:
    image = _image(3)
    assert np.array_equal(decode_png(encode_png(image)), image)


def test_sketchbook_records_strokes_and_ignores_echoes() -> None:
    book = Sketchbook()
    assert book.record((), None) is book  # a fresh canvas sends nothing
    book = book.record(_drawing_objects(1), _image(1))
    assert len(book.steps) == 1 and np.array_equal(book.current.image, _image(1))
    assert book.record(_drawing_objects(1), _image(1)) is book  # the same drawing again: no new step
    book = book.record(_drawing_objects(2), _image(2))
    assert len(book.steps) == 2 and book.generation == 0  # strokes do not rebuild the canvas
    for n in range(3, MAX_STEPS + 10):
        book = book.record(_drawing_objects(n), _image(n))
    assert len(book.steps) == MAX_STEPS


def test_sketchbook_undo_clear_restore() -> None:
    book = Sketchbook().record(_drawing_objects(1), _image(1)).record(_drawing_objects(2), _image(2))
    undone = book.undo()
    assert undone.base == _drawing_objects(1) and undone.generation == book.generation + 1
    assert undone.undo().current is None and undone.undo().base == ()
    assert Sketchbook().undo() == Sketchbook()

    cleared = book.clear()
    assert cleared.current is None and cleared.base == () and len(cleared.gallery) == 1
    assert cleared.gallery[0].objects == _drawing_objects(2)
    other = cleared.record(_drawing_objects(5), _image(5))
    back = other.restore(0)
    assert back.current.objects == _drawing_objects(2) and back.base == _drawing_objects(2)
    assert [d.objects for d in back.gallery] == [_drawing_objects(5)]  # swapped places
    assert back.restore(7) is back


def test_sketchbook_gallery_is_short_and_has_no_duplicates() -> None:
    book = Sketchbook()
    for n in range(1, MAX_GALLERY + 4):
        book = book.record(_drawing_objects(n), _image(n)).clear()
    assert len(book.gallery) == MAX_GALLERY
    assert book.gallery[0].objects == _drawing_objects(MAX_GALLERY + 3)  # newest first
    again = book.record(book.gallery[2].objects, _image(0)).clear()
    assert len(again.gallery) == MAX_GALLERY and again.gallery[0].objects == book.gallery[2].objects


def test_sketchbook_rebuilds_only_a_canvas_that_would_show_something_else() -> None:
    book = Sketchbook().record(_drawing_objects(2), _image(2))
    assert book.needs_rebuild(widget_exists=False)  # a new page would show the blank base
    assert not book.needs_rebuild(widget_exists=True)
    rebuilt = book.rebuild()
    assert rebuilt.base == _drawing_objects(2) and not rebuilt.needs_rebuild(widget_exists=False)


def test_thumbnail_is_small_grey_and_keeps_the_strokes() -> None:
    drawing = Drawing.from_canvas(_drawing_objects(1), stroke_image(DIGIT_STROKES["1"]))
    thumb = drawing.thumbnail(52)
    assert thumb.shape == (52, 52) and thumb.dtype == np.uint8
    assert thumb[:, 24:30].max() > 100 and thumb[:, :10].max() == 0  # the 1 in the middle, black at the side


# --- HTML for the page ---------------------------------------------------------------------------------------------
FASHION = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def test_probability_bars_show_every_class_and_mark_the_top_one() -> None:
    probs = np.array([0.001, 0.97, 0.02, 0.009, 0, 0, 0, 0, 0, 0])
    html = display.probability_bars_html(probs, FASHION, title="ViT: probability of each class")
    assert [m for m in re.findall(r'class="vd-bar-name">([^<]+)<', html)] == list(FASHION)
    assert re.findall(r'class="vd-bar vd-top"><span class="vd-bar-name">([^<]+)<', html) == ["Trouser"]
    assert 'style="width:97.0%"' in html
    assert re.findall(r'class="vd-bar-pct">([^<]+)<', html)[:4] == ["&lt;1%", "97%", "2%", "&lt;1%"]


def test_prediction_label_is_one_word_sized_by_its_length() -> None:
    short, long = display.label_html("7"), display.label_html("Pullover")
    sizes = [float(re.search(r"--vd-chars:([\d.]+)", h).group(1)) for h in (short, long)]
    assert sizes[1] > 7 * sizes[0]  # the long name gets a smaller font in the same box
    html = display.prediction_html("ViT", "Trouser", 0.98)
    assert 'aria-label="ViT predicts Trouser"' in html and ">Trouser</span>" in html


def test_heat_map_html_has_the_image_and_the_colour_scale() -> None:
    html = display.heat_map_html(np.zeros((28, 28, 3), np.uint8), title="ViT · attention rollout")
    src = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert src is not None
    assert 'class="vd-scale"' in html and "linear-gradient" in html
    assert display.colour_scale_css().count("%") == len(colorscale())


def test_page_css_and_script_survive_the_html_sanitizer() -> None:
    """st.html runs its body through DOMPurify, which drops a style or script element whose text holds an
    angle bracket followed by a letter or a slash: the whole app's styling would vanish without an error."""
    from vitdemo.ui import present, shell

    for name, text in [("shell.CSS", shell.CSS), ("present.CSS", present.CSS)]:
        inner = text.strip().removeprefix("<style>").removesuffix("</style>")
        assert not re.search(r"<[/\w]", inner), name
    assert not re.search(r"<[/\w]", shell.CLIENT_JS.read_text(encoding="utf-8"))


# --- the Present page under AppTest ------------------------------------------------------------------------------
@pytest.fixture
def draw_env(tmp_home: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VITDEMO_HOME and the shared data; the checkpoints are whatever conftest found."""
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return tmp_home


def _present(canvas: FakeCanvas) -> object:
    at = run_app(canvas)
    at.switch_page(PRESENT)
    return run_app(canvas, at)


def _html(at: object) -> str:
    """All the page's HTML: st.html elements and markdown."""
    return " ".join([h.proto.body for h in at.get("html")] + [m.value for m in at.markdown])


def test_present_shows_both_answers_bars_and_maps_after_one_digit(draw_env: Path, mnist_checkpoints: Path) -> None:
    canvas = FakeCanvas()
    at = _present(canvas)
    assert predictions(at) == {}
    assert "is waiting for a drawing" in " ".join(m.value for m in at.markdown)
    canvas.draw(*DIGIT_STROKES["7"])
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    html = _html(at)
    assert html.count('class="vd-bars"') == 2
    assert html.count('class="vd-map"') == 2 and html.count('class="vd-scale"') == 2
    assert 'aria-label="ViT · attention rollout"' in html and 'aria-label="CNN · integrated gradients"' in html
    assert at.button(key="pad_undo") and at.button(key="clear_canvas")


def test_present_join_panel_shows_the_address_and_hides(draw_env: Path) -> None:
    at = _present(FakeCanvas())
    html = _html(at)
    url = join.join_url(join.lan_address(), 8501)  # AppTest runs with Streamlit's default port
    assert f'class="vd-join-url">{join.breakable_url(url)}<' in html and "<svg" in html
    at.button(key="present_join").click()
    at = run_app(FakeCanvas(), at)
    assert 'class="vd-join-url"' not in _html(at)
    at.button(key="present_join").click()
    at = run_app(FakeCanvas(), at)
    assert 'class="vd-join-url"' in _html(at)


def test_present_shows_the_run_training_now_and_hides_it(draw_env: Path) -> None:
    at = _present(FakeCanvas())
    assert 'class="vd-watch"' not in _html(at) and not [b for b in at.button if b.key == "present_learn"]
    reg = Registry(draw_env)
    name = "**ours** [x](y)"  # anyone's text: shown as typed
    run_id = reg.create_run(
        name=name, kind="vit", dataset="mnist", config=TrainConfig(epochs=3).to_dict(), status="running",
        device="cpu", worker_pid=os.getpid(), heartbeat=time.time(), started_at=time.time(),
        progress={"epoch": 2, "step": 50, "total_steps": 120, "loss": 0.4321},
    )  # fmt: skip
    at = run_app(FakeCanvas(), at)  # the strip's fragment: one live query, before any answers
    assert 'class="vd-watch"' not in _html(at)
    row = WatchRow(tuple(range(10)), tuple(range(10)), tuple(range(10)), (0.9,) * 10, step=50, epoch=1.25)
    points.set_watch(reg, run_id, row.to_dict())
    at = run_app(FakeCanvas(), at)
    assert _html(at).count('class="vd-watch-digit vd-right"') == 10
    line = f"Learning now: {name} · round 2 of 3 · 10 of 10 right"  # the Simple view: no loss, no run number
    assert line in [html.unescape(c.value) for c in at.caption]
    at.session_state["view_expert"] = True
    at = run_app(FakeCanvas(), at)
    line = f"Training now: #{run_id} {name} · epoch 2/3 · loss 0.432 · 10 of 10 right"
    assert line in [html.unescape(c.value) for c in at.caption]
    at.session_state["view_expert"] = False
    at.button(key="present_learn").click()
    at = run_app(FakeCanvas(), at)
    assert 'class="vd-watch"' not in _html(at) and at.button(key="present_learn").label == "Watch it learn"
    at.button(key="present_learn").click()
    at = run_app(FakeCanvas(), at)
    assert 'class="vd-watch"' in _html(at)


def test_a_drawing_follows_from_draw_to_present(draw_env: Path, mnist_checkpoints: Path) -> None:
    canvas = FakeCanvas()
    at = run_app(canvas)
    canvas.draw(*DIGIT_STROKES["7"])
    at = run_app(canvas, at)
    at.switch_page(PRESENT)
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    key, initial = canvas.calls[-1]
    assert key.startswith("canvas_present_") and len(initial) == len(DIGIT_STROKES["7"])


def test_lan_address_sends_nothing() -> None:
    """connect() on a UDP socket sends no packet: a listener on the probed port would see nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.2)
        join.lan_address(probe=listener.getsockname())
        with pytest.raises(TimeoutError):
            listener.recvfrom(64)


def test_the_class_wall_shows_the_newest_drawings_and_who_was_fooled(draw_env: Path) -> None:
    from vitdemo.classset import store as classset
    from vitdemo.classset.store import Answer, ClassSet
    from vitdemo.runs.people import Actor

    at = _present(FakeCanvas())
    assert "No class drawings yet" in _html(at)
    seven = stroke_image(DIGIT_STROKES["7"])
    fooled = [Answer("vit", "v", 1, 0.8), Answer("cnn", "c", 7, 0.99)]
    classset.submit(ClassSet(draw_env), seven, 7, Actor("person:1", "Ana"), fooled, dataset="mnist")
    at = run_app(FakeCanvas(), at)  # the wall's fragment reads the set's version: a new drawing, a new wall
    wall = _html(at)
    assert "1 drawing · fooled the ViT 1 · the CNN 0" in wall and wall.count('class="vd-wall-tile"') == 1
    assert 'src="data:image/png;base64,' in wall.split('class="vd-wall-tile"')[1]  # the drawing itself
