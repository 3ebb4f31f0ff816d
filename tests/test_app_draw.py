"""The app shell and the Draw page, run in-process with Streamlit's AppTest (the canvas is patched)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from browser import DIGIT_STROKES, digit_png, stroke_image
from streamlit.testing.v1 import AppTest

from vitdemo.preprocess.pipeline import preprocess
from vitdemo.runs.store import Registry
from vitdemo.ui import shell
from vitdemo.ui.draw import CanvasValue
from vitdemo.ui.draw import draw_canvas as REAL_CANVAS
from vitdemo.views import display, words

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = [
    "app_pages/draw.py",
    "app_pages/present.py",
    "app_pages/lab.py",
    "app_pages/train.py",
    "app_pages/evaluate.py",
    "app_pages/leaderboard.py",
    "app_pages/classset.py",
]
PREDICTION = re.compile(r'aria-label="(ViT|CNN) predicts ([^"]+)"')
OPINION = re.compile(r'aria-label="(#\d+|[\w-]+) predicts ([^"]+)"')  # an extra opinion: '#12 predicts 7'
ROLLOUT_HEADS, ROLLOUT_IGNORE = "rollout_heads", "rollout_ignore"
TIMEOUT_S = 120  # the first run imports torch and loads both models; a busy 2-core CI box is slow


@pytest.fixture
def draw_env(tmp_home: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VITDEMO_HOME and the shared data; the checkpoints are whatever conftest found."""
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return tmp_home


def fabric_path(stroke: list[tuple[float, float]]) -> dict:
    """A stand-in for the canvas's Fabric.js object of one stroke (it keeps the stroke, to draw it again)."""
    return {"type": "Path", "stroke": "#ffffff", "points": [list(p) for p in stroke]}


class FakeCanvas:
    """Plays the canvas for AppTest. The real component runs too (Streamlit keeps and drops its widget state
    as it would for a browser); what it returns is replaced: each widget key starts with the objects it is
    built with and sends nothing until `draw` adds strokes to the canvas shown last, as a hand would."""

    def __init__(self, image: np.ndarray | None = None) -> None:
        self.calls: list[tuple[str, tuple]] = []  # (widget key, initial objects) of every run
        self.sent: dict[str, CanvasValue] = {}
        self.fixed = None if image is None else CanvasValue(({"type": "Path", "image": "fixed"},), image)

    def __call__(self, key: str, initial: tuple = (), **kwargs: object) -> CanvasValue:
        REAL_CANVAS(key, initial, **kwargs)
        self.calls.append((key, tuple(initial)))
        if self.fixed is not None:  # every canvas shows one fixed drawing
            return self.fixed
        return self.sent.get(key, CanvasValue(tuple(initial), None))

    def draw(self, *strokes: list[tuple[float, float]]) -> None:
        key, initial = self.calls[-1]
        before = self.sent[key].objects if key in self.sent else initial
        objects = (*before, *(fabric_path(s) for s in strokes))
        self.sent[key] = CanvasValue(objects, stroke_image([o["points"] for o in objects]))


def expert_app() -> AppTest:
    """The app in the Expert view (the sidebar's switch on): every figure and technical name."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["view_expert"] = True
    return at


def run_app(canvas: np.ndarray | FakeCanvas | None, at: AppTest | None = None) -> AppTest:
    """Run (or rerun) the app with the canvas showing `canvas`: one fixed drawing, nothing (None) or a FakeCanvas."""
    at = at if at is not None else AppTest.from_file(APP, default_timeout=TIMEOUT_S)  # not `or`: a new one is falsy
    fake = canvas if isinstance(canvas, FakeCanvas) else FakeCanvas(canvas)
    with patch("vitdemo.ui.draw.draw_canvas", side_effect=fake):
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def predictions(at: AppTest) -> dict[str, str]:
    return dict(m for md in at.markdown for m in PREDICTION.findall(md.value))


def image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


@pytest.mark.parametrize("digit", ["1", "7"])
def test_drawn_digit_is_predicted_and_explained(draw_env: Path, mnist_checkpoints: Path, digit: str) -> None:
    at = run_app(stroke_image(DIGIT_STROKES[digit]), expert_app())
    assert predictions(at) == {"ViT": digit, "CNN": digit}
    captions = image_captions(at)
    assert captions.count("on the model input") == 2  # rollout and Grad-CAM
    assert captions.count("on the drawing") == 2
    assert "layer 1" in captions  # the ViT's per-layer class-token attention
    assert [c for c in captions if c.startswith("4 · centred 28×28")]  # the preprocessing strip
    assert any("Server time" in c.value for c in at.caption)
    notes = [c.value for c in at.caption if c.value.startswith("The percentage is calibrated")]
    assert len(notes) == 2  # beside both sides' bars: the shipped models carry a fitted temperature
    assert not at.info  # no prompt next to a prediction
    left = at.session_state[shell.LAST_INPUT_KEY]  # handed to the Robustness lab and Under the hood
    assert left.shape == (28, 28) and left.max() > 0.5


@pytest.mark.parametrize("canvas", [None, np.zeros((280, 280, 4), np.uint8)], ids=["no-stroke-yet", "blank"])
def test_empty_canvas_prompts_and_predicts_nothing(draw_env: Path, canvas: np.ndarray | None) -> None:
    at = run_app(canvas)
    assert predictions(at) == {}
    assert any("Draw a digit" in info.value for info in at.info)
    assert "on the model input" not in image_captions(at)


def test_rollout_controls_sit_beside_the_map_in_plain_words_and_are_kept(
    draw_env: Path, mnist_checkpoints: Path
) -> None:
    image = stroke_image(DIGIT_STROKES["7"])
    at = run_app(image, expert_app())
    heads, ignore = at.button_group(key=ROLLOUT_HEADS), at.slider(key=ROLLOUT_IGNORE)
    assert heads.label == "Combine heads by" and "Head fusion" in heads.help  # the technical name in the help
    assert ignore.label == "Ignore the weakest links of attention" and "Discard ratio" in ignore.help
    assert not at.sidebar.slider and not at.sidebar.button_group  # beside the map, not in the sidebar
    assert [b.label for b in at.main.button_group if b.key == ROLLOUT_HEADS] == ["Combine heads by"]
    heads.set_value("max")
    ignore.set_value(0.5)
    at = run_app(image, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    assert image_captions(at).count("on the drawing") == 2
    assert at.session_state["_vd_rollout"] == ("max", 0.5)  # what the analysis of this run used
    at.button_group(key="input_mode").set_value("upload")
    at = run_app(image, at)  # nothing uploaded: no map, so no controls on the page
    assert not any(b.key == ROLLOUT_HEADS for b in at.button_group)
    at.button_group(key="input_mode").set_value("draw")
    at = run_app(image, at)  # the map is back with the settings as they were left
    assert at.button_group(key=ROLLOUT_HEADS).value == "max" and at.slider(key=ROLLOUT_IGNORE).value == 0.5


def test_rollout_settings_change_the_map(mnist_checkpoints: Path) -> None:
    """The settings the page passes on reach the rollout: a sharper map when the weakest links are dropped."""
    from vitdemo.checkpoints import load_checkpoint
    from vitdemo.explain.inference import analyze

    vit = load_checkpoint(mnist_checkpoints / "vit_mnist.safetensors")
    image = stroke_image(DIGIT_STROKES["7"])
    plain = analyze(image, {"vit": vit}).predictions["vit"].heat
    sharp = analyze(image, {"vit": vit}, head_fusion="max", discard_ratio=0.9).predictions["vit"].heat
    assert not np.allclose(plain, sharp)


def test_missing_checkpoints_are_explained_not_raised(
    draw_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(empty))
    at = run_app(stroke_image(DIGIT_STROKES["7"]))
    warnings = " ".join(w.value for w in at.warning)
    assert "No ViT model" in warnings and "No CNN model" in warnings
    assert "vit_mnist.safetensors" in warnings
    assert predictions(at) == {}


def test_a_broken_checkpoint_is_loaded_once_per_version_and_named_without_its_folder(
    draw_env: Path, mnist_checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "server" / "checkpoints"
    folder.mkdir(parents=True)
    broken = folder / "vit_mnist.safetensors"
    broken.write_bytes(b"a file that is not a safetensors checkpoint")  # broken by hand
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(folder))
    reads: list[str] = []  # every checkpoint the app's cached loader opens
    load = shell.load_checkpoint
    monkeypatch.setattr(shell, "load_checkpoint", lambda path: reads.append(Path(path).name) or load(path))
    image = stroke_image(DIGIT_STROKES["7"])
    at = run_app(image)
    at = run_app(image, at)  # a rerun: the broken file is not rebuilt
    assert reads.count("vit_mnist.safetensors") == 1
    warnings = " ".join(w.value for w in at.warning)
    assert "The ViT model could not be loaded" in warnings and "vit_mnist.safetensors" in warnings
    assert str(tmp_path) not in warnings and "/server/" not in warnings  # the file's name, not its folder

    shutil.copyfile(mnist_checkpoints / "vit_mnist.safetensors", broken)  # fixed: a new version of the file
    os.utime(broken, ns=(broken.stat().st_atime_ns, broken.stat().st_mtime_ns + 10**9))
    at = run_app(image, at)
    assert reads.count("vit_mnist.safetensors") == 2
    assert predictions(at)["ViT"] == "7"


def test_uploaded_png_is_predicted(draw_env: Path, mnist_checkpoints: Path) -> None:
    at = run_app(None)
    at.button_group(key="input_mode").set_value("upload")
    at = run_app(None, at)
    at.file_uploader(key="upload").upload("seven.png", digit_png("7", dark_on_light=True), "image/png")
    at = run_app(None, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}


def test_uploaded_non_image_is_a_clear_error(draw_env: Path) -> None:
    at = run_app(None)
    at.button_group(key="input_mode").set_value("upload")
    at = run_app(None, at)
    at.file_uploader(key="upload").upload("notes.png", b"this is not a picture", "image/png")
    at = run_app(None, at)
    assert any("notes.png" in e.value and "image" in e.value for e in at.error)
    assert predictions(at) == {}


def test_random_test_image_shows_its_true_label(draw_env: Path, mnist_checkpoints: Path) -> None:
    at = run_app(None)
    at.button_group(key="input_mode").set_value("test")
    at = run_app(None, at)
    truth = [m.value for m in at.markdown if "True label" in m.value]
    assert len(truth) == 1
    assert set(predictions(at)) == {"ViT", "CNN"}
    at.button(key="next_test").click()
    at = run_app(None, at)
    assert len([m for m in at.markdown if "True label" in m.value]) == 1


def test_a_finished_run_can_replace_the_shipped_model(draw_env: Path, mnist_checkpoints: Path) -> None:
    registry = Registry(draw_env)
    copy = draw_env / "my_vit.safetensors"
    shutil.copyfile(mnist_checkpoints / "vit_mnist.safetensors", copy)
    common = {"kind": "vit", "config": {}, "checkpoint": str(copy), "test_acc": 0.97}
    mine = registry.create_run(name="my-vit", dataset="mnist", status="done", **common)
    registry.create_run(name="other-dataset", dataset="fashion", status="done", **common)
    registry.create_run(name="still-training", dataset="mnist", status="running", **common)
    image = stroke_image(DIGIT_STROKES["7"])
    at = run_app(image)
    picker = at.selectbox(key="vit_model_mnist")
    assert picker.value == "shipped"
    assert picker.options[0].startswith("Shipped ViT")
    baselines = tuple(f"#{r.id} " for r in registry.list_runs() if r.baseline)  # shipped fine-tunes are choices too
    assert [o for o in picker.options[1:] if not o.startswith(baselines)] == [f"#{mine} my-vit (97.00%)"]
    # not the fashion run, not the running one; and a ViT run is no CNN choice
    assert [o for o in at.selectbox(key="cnn_model_mnist").options[1:] if not o.startswith(baselines)] == []
    picker.set_value(f"run:{mine}")
    at = run_app(image, at)
    assert at.selectbox(key="vit_model_mnist").value == f"run:{mine}"
    assert predictions(at) == {"ViT": "7", "CNN": "7"}


def test_fashion_uses_fashion_class_names(draw_env: Path, checkpoints_dir: Path) -> None:
    at = run_app(stroke_image(DIGIT_STROKES["1"]))
    at.radio(key="dataset").set_value("fashion")
    at = run_app(stroke_image(DIGIT_STROKES["1"]), at)
    found = predictions(at)
    if (checkpoints_dir / "vit_fashion.safetensors").is_file():
        fashion = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"}
        assert found and set(found.values()) <= fashion
    else:
        assert any("No ViT model" in w.value for w in at.warning)


def test_every_page_runs(draw_env: Path) -> None:
    at = run_app(None)
    assert at.radio(key="dataset").value == "mnist"  # the shared sidebar is there
    for page in PAGES:
        at.switch_page(page)
        at = run_app(None, at)
        assert at.selectbox(key="vit_model_mnist").value == "shipped"  # app.py ran: the sidebar is there


# --- extra opinions: any finished run beside the ViT and the CNN --------------------------------------------
def opinions(at: AppTest) -> dict[str, str]:
    return {k: v for md in at.markdown for k, v in OPINION.findall(md.value) if k not in ("ViT", "CNN")}


@pytest.fixture(scope="module")
def tiny_logreg(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logistic regression fitted here on 500 MNIST training images (a second), saved as a skops file."""
    from vitdemo.data import load_raw
    from vitdemo.models.classic import ClassicConfig, fit_classic, save_classic

    train = load_raw("mnist", train=True, data_dir=data_dir)
    fitted = fit_classic(ClassicConfig(kind="logreg", max_iter=100), train.images[:500].numpy(), train.labels[:500])
    return save_classic(tmp_path_factory.mktemp("classic") / "my-logreg.skops", fitted)


def _done_run(registry: Registry, name: str, kind: str, checkpoint: Path, config: dict | None = None) -> int:
    return registry.create_run(
        name=name, kind=kind, dataset="mnist", config=config or {}, status="done", checkpoint=str(checkpoint),
        test_acc=0.9,
    )  # fmt: skip


def test_a_classic_run_gives_an_extra_opinion_with_its_templates(
    draw_env: Path, mnist_checkpoints: Path, tiny_logreg: Path
) -> None:
    from vitdemo.explain.opinions import classic_opinion
    from vitdemo.models.classic import load_classic

    run_id = _done_run(Registry(draw_env), "[click](http://x) logreg", "logreg", tiny_logreg, {"kind": "logreg"})
    image = stroke_image(DIGIT_STROKES["7"])
    at = run_app(image)
    picker = at.multiselect(key="draw_extra_mnist")
    mine = f"#{run_id} [click](http://x) logreg (Logistic regression, MNIST) · 90.00%"
    assert mine in picker.options and any("logreg-mnist-c0.1" in o for o in picker.options)  # shipped ones too
    picker.set_value([f"run:{run_id}"])
    at = run_app(image, at)
    expected = classic_opinion(load_classic(tiny_logreg), preprocess(image).image).prediction  # the page's input
    assert opinions(at) == {f"#{run_id}": str(expected.label)}
    assert predictions(at) == {"ViT": "7", "CNN": "7"}  # the two main answers are still there
    (templates,) = [image.captions for image in at.image if len(image.captions) == 10]
    assert templates[0].startswith("0 · ") and templates[9].startswith("9 · ")
    assert any("red pixels vote for that class" in c.value for c in at.caption)
    assert any("&#91;click&#93;" in m.value for m in at.markdown)  # the run's name literally, never a link


def test_a_linear_run_gives_an_extra_opinion_explained_by_integrated_gradients(
    draw_env: Path, mnist_checkpoints: Path, data_dir: Path
) -> None:
    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.config import LinearConfig, TrainConfig
    from vitdemo.data import load_dataset
    from vitdemo.training.loop import train

    config = TrainConfig(model=LinearConfig(), epochs=1, train_subset=1000, val_size=100, device="cpu")
    result = train(config, data=load_dataset("mnist", data_dir, val_size=100, train_subset=1000))
    path = draw_env / "linear.safetensors"
    save_checkpoint(path, result.model, make_meta(config.model, "mnist", train_config=config.to_dict()))
    run_id = _done_run(Registry(draw_env), "pixels", "linear", path, config.to_dict())
    image = stroke_image(DIGIT_STROKES["1"])
    at = run_app(image)
    at.multiselect(key="draw_extra_mnist").set_value([f"run:{run_id}"])
    at = run_app(image, at)
    assert set(opinions(at)) == {f"#{run_id}"}
    assert "integrated gradients" in image_captions(at)
    assert any(c.value == "Family: Linear" for c in at.caption)


def test_a_broken_classic_file_is_one_sentence_without_its_folder(draw_env: Path, mnist_checkpoints: Path) -> None:
    broken = draw_env / "secret-folder" / "broken.skops"
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip file")
    run_id = _done_run(Registry(draw_env), "broken", "logreg", broken)
    image = stroke_image(DIGIT_STROKES["1"])
    at = run_app(image)
    at.multiselect(key="draw_extra_mnist").set_value([f"run:{run_id}"])
    at = run_app(image, at)
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("No opinion from this model: broken.skops is not a readable classic-model file")
    assert "secret-folder" not in warning and opinions(at) == {}


def test_shipped_classic_files_are_offered_by_their_name(tmp_path: Path) -> None:
    from vitdemo.ui.opinions import shipped_classic_sources

    for name in ("logreg_mnist.skops", "knn_fashion.skops", "notes_mnist.skops", "svm_mnist.skops"):
        (tmp_path / name).write_bytes(b"")
    found = shipped_classic_sources(tmp_path, "mnist", known={str((tmp_path / "svm_mnist.skops").resolve())})
    assert [s.key for s in found] == ["file:logreg_mnist.skops"]  # not another dataset's, nor a registered one
    assert found[0].title == "logreg_mnist (Logistic regression, MNIST) · shipped" and found[0].family == "classic"


# --- the drawing pad: undo, clear, earlier drawings ---------------------------------------------------------
ONE, TOP_BAR = DIGIT_STROKES["1"][0], [(0.20, 0.20), (0.80, 0.20)]


def test_undo_takes_back_the_last_stroke(draw_env: Path, mnist_checkpoints: Path) -> None:
    canvas = FakeCanvas()
    at = run_app(canvas)
    assert at.button(key="pad_undo").disabled and at.button(key="clear_canvas").disabled  # nothing to undo yet
    canvas.draw(ONE)
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "1", "CNN": "1"}
    canvas.draw(TOP_BAR)  # a second stroke on the same canvas
    at = run_app(canvas, at)
    assert not at.button(key="pad_undo").disabled
    key_before = canvas.calls[-1][0]

    at.button(key="pad_undo").click()
    at = run_app(canvas, at)
    key, initial = canvas.calls[-1]
    assert key != key_before  # a canvas built again...
    assert [o["points"] for o in initial] == [[list(p) for p in ONE]]  # ...from the first stroke only
    assert predictions(at) == {"ViT": "1", "CNN": "1"}  # at once: the image of that step was kept
    at.button(key="pad_undo").click()
    at = run_app(canvas, at)
    assert canvas.calls[-1][1] == () and predictions(at) == {}
    assert at.button(key="pad_undo").disabled


def test_clear_keeps_the_drawing_as_a_thumbnail_to_go_back_to(draw_env: Path, mnist_checkpoints: Path) -> None:
    canvas = FakeCanvas()
    at = run_app(canvas)
    canvas.draw(*DIGIT_STROKES["7"])
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    at.button(key="clear_canvas").click()
    at = run_app(canvas, at)
    assert predictions(at) == {} and canvas.calls[-1][1] == ()  # a blank canvas...
    assert [b.key for b in at.button if b.key.startswith("pad_restore_")] == ["pad_restore_0"]  # ...and the 7 below
    canvas.draw(ONE)
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "1", "CNN": "1"}

    at.button(key="pad_restore_0").click()  # back to the 7
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    assert len(canvas.calls[-1][1]) == len(DIGIT_STROKES["7"])  # the canvas shows the 7's strokes again
    assert [b.key for b in at.button if b.key.startswith("pad_restore_")] == ["pad_restore_0"]  # the 1 took its place
    at.button(key="pad_restore_0").click()
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "1", "CNN": "1"}


def test_the_drawing_survives_another_input_mode(draw_env: Path, mnist_checkpoints: Path) -> None:
    canvas = FakeCanvas()
    at = run_app(canvas)
    canvas.draw(*DIGIT_STROKES["7"])
    at = run_app(canvas, at)
    at.button_group(key="input_mode").set_value("upload")
    at = run_app(canvas, at)
    assert predictions(at) == {}
    at.button_group(key="input_mode").set_value("draw")
    at = run_app(canvas, at)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    assert len(canvas.calls[-1][1]) == len(DIGIT_STROKES["7"])  # the canvas came back with the drawing, not blank


# --- pure display helpers the page relies on ----------------------------------------------------------
def test_upscale_keeps_pixels_square_and_pad_square_letterboxes() -> None:
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = display.upscale(image, 12)  # a whole factor of 4
    assert big.shape == (8, 12)
    assert (big[:4, :4] == 0).all() and (big[4:, 8:] == 5).all()
    assert display.pad_square(big).shape == (12, 12)


def test_heat_on_input_lands_on_the_strokes() -> None:
    drawing = stroke_image(DIGIT_STROKES["1"])
    pre = preprocess(drawing)
    heat = (pre.image > 0.5).astype(np.float32)  # "attention" exactly on the model input's ink
    on_drawing = display.heat_on_input(heat, pre)
    ink = drawing[..., 0] > 127
    assert on_drawing.shape == ink.shape
    assert on_drawing[ink].mean() > 0.5  # hot where the drawing has ink...
    assert on_drawing[~ink].mean() < 0.05  # ...and cold elsewhere


# -- issue 24: the Simple view, and the small bugs -----------------------------------------------------------------
EXPERT_ONLY = ("Server time", " params", "class token", "Attention rollout", "Integrated gradients", "calibrated")


def page_text(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info") for e in at.get(kind))


def test_the_simple_view_shows_both_answers_and_maps_in_plain_words(draw_env: Path, mnist_checkpoints: Path) -> None:
    at = run_app(stroke_image(DIGIT_STROKES["7"]))  # a student's first visit: the Simple view
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    assert image_captions(at).count("on the model input") == 2  # both maps are still there
    text = page_text(at)
    assert [w for w in EXPERT_ONLY if w in text] == []  # no timings, sizes or method names
    assert words.say("draw", "vit_map") in text and words.say("draw", "cnn_map") in text
    assert not [b for b in at.button_group if b.key == ROLLOUT_HEADS]  # the rollout's settings: Expert only
    at.toggle(key="view_expert").set_value(True)
    text = page_text(run_app(stroke_image(DIGIT_STROKES["7"]), at))
    assert "Server time" in text and " params" in text and "class token" in text  # everything, in Expert


def test_combine_heads_still_shows_its_choice_after_draw_then_test(draw_env: Path, mnist_checkpoints: Path) -> None:
    """The bug: after Draw -> Test no option was selected. The control moved on the page, so the browser drew it
    anew from what the server sent, which no longer carried the value (only the first run set it)."""
    at = run_app(stroke_image(DIGIT_STROKES["7"]), expert_app())
    at.button_group(key="input_mode").set_value("test")
    at = run_app(None, at)
    heads = at.button_group(key=ROLLOUT_HEADS)
    assert heads.value == "mean"
    assert heads.proto.set_value and list(heads.proto.raw_values) == ["average"]  # what the browser shows
    assert at.slider(key=ROLLOUT_IGNORE).proto.set_value


def test_fashion_test_images_go_to_the_models_as_they_are(draw_env: Path, checkpoints_dir: Path) -> None:
    """The bug: some Fashion-MNIST test images (a coat fills its square) were refused as "not a handwritten
    digit", so Test mode asked to draw a digit instead of answering."""
    if not (checkpoints_dir / "vit_fashion.safetensors").is_file():
        pytest.skip("needs the shipped Fashion-MNIST checkpoints")
    from vitdemo.data import load_raw

    split = load_raw("fashion", train=False, data_dir=os.environ["VITDEMO_DATA_DIR"])
    refused = next(i for i in range(len(split)) if preprocess(split.images[i].numpy()).empty)  # index 12 or so
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["dataset"] = "fashion"
    at.session_state["test_index_fashion"] = refused
    at.session_state["input_mode"] = "test"
    at = run_app(None, at)
    assert set(predictions(at)) == {"ViT", "CNN"}
    assert not [i.value for i in at.info if "digit" in i.value]
