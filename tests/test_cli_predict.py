"""`python -m vitdemo predict` with bad files among good ones, in real subprocesses on real files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent


def predict(*args: str, checkpoints: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vitdemo", "predict", *args, "--home", str(tmp_path / "home")]
    env = {**os.environ, "VITDEMO_CHECKPOINTS": str(checkpoints), "VITDEMO_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN and Infinity, which are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} in the output")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Good and bad image files on disk."""
    out = {}
    one = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(one).line([(100, 20), (100, 180)], fill=0, width=16)  # a dark "1" on paper
    out["one"] = tmp_path / "one.png"
    one.save(out["one"])
    seven = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(seven).line([(60, 60), (200, 60), (110, 230)], fill=255, width=18, joint="curve")
    out["seven"] = tmp_path / "seven.png"
    seven.save(out["seven"])
    pixel = np.zeros((100, 100), dtype=np.uint8)
    pixel[50, 50] = 255
    out["pixel"] = tmp_path / "pixel.png"  # crashed `predict` (IndexError) and skipped the files after it
    Image.fromarray(pixel).save(out["pixel"])
    strip = np.zeros((1, 2000), dtype=np.uint8)
    strip[0, ::2] = 255
    out["strip"] = tmp_path / "strip.png"
    Image.fromarray(strip).save(out["strip"])
    out["noise"] = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (280, 280), dtype=np.uint8)).save(out["noise"])
    out["junk"] = tmp_path / "notes.png"
    out["junk"].write_text("not an image")
    out["truncated"] = tmp_path / "truncated.png"
    out["truncated"].write_bytes(out["seven"].read_bytes()[:300])
    out["missing"] = tmp_path / "missing.png"
    return out


def test_every_good_file_is_answered_and_each_bad_one_reported(
    files: dict[str, Path], mnist_checkpoints: Path, tmp_path: Path
) -> None:
    order = ["pixel", "junk", "one", "missing", "strip", "truncated", "noise", "seven"]
    proc = predict(*(str(files[k]) for k in order), checkpoints=mnist_checkpoints, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    bad = proc.stderr.strip().splitlines()
    assert len(bad) == 3  # one line each, naming the file and what is wrong
    for key, words in (("junk", "not an image"), ("missing", "no such file"), ("truncated", "could not be decoded")):
        (line,) = [x for x in bad if x.startswith(str(files[key]))]
        assert words in line, line
    out = proc.stdout.splitlines()
    for key in ("one", "seven", "pixel", "strip", "noise"):  # every decodable file gets both models' answer
        assert sum(line.startswith(f"{files[key]}  ") for line in out) == 2, (key, out)
    assert f"{files['one']}  vit: 1 " in proc.stdout and f"{files['seven']}  cnn: 7 " in proc.stdout
    assert "no digit (That is only a dot" in proc.stdout  # the pixel and the strip
    assert "no digit (That does not look like a handwritten digit" in proc.stdout  # the noise


def test_all_good_files_exit_zero(files: dict[str, Path], mnist_checkpoints: Path, tmp_path: Path) -> None:
    proc = predict(str(files["one"]), str(files["noise"]), checkpoints=mnist_checkpoints, tmp_path=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""


def test_json_has_a_row_for_every_file_and_no_nan(
    files: dict[str, Path], mnist_checkpoints: Path, tmp_path: Path
) -> None:
    order = ["one", "junk", "noise"]
    proc = predict(*(str(files[k]) for k in order), "--json", checkpoints=mnist_checkpoints, tmp_path=tmp_path)
    assert proc.returncode == 2
    rows = [strict_json(line) for line in proc.stdout.splitlines()]
    assert [(r["file"], r.get("model")) for r in rows] == [
        (str(files["one"]), "vit"),
        (str(files["one"]), "cnn"),
        (str(files["junk"]), None),
        (str(files["noise"]), "vit"),
        (str(files["noise"]), "cnn"),
    ]
    assert rows[0]["prediction"] == "1" and math.isclose(sum(rows[0]["probabilities"]), 1.0, abs_tol=1e-4)
    assert "not an image" in rows[2]["error"]
    assert rows[3]["prediction"] is None and rows[3]["not_digit"] and rows[3]["empty"] and rows[3]["message"]


def test_a_checkpoint_with_nan_weights_is_refused_not_printed_as_nan(
    files: dict[str, Path], mnist_checkpoints: Path, tmp_path: Path
) -> None:
    """A real checkpoint file whose weights hold NaN is refused when it is loaded, naming the file and the
    tensor, before any image is answered: never NaN probabilities in the JSON."""
    from vitdemo.checkpoints import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(mnist_checkpoints / "cnn_mnist.safetensors")
    with torch.no_grad():
        for p in loaded.model.parameters():
            p.fill_(float("nan"))
    broken = save_checkpoint(tmp_path / "nan_cnn.safetensors", loaded.model, loaded.meta)
    args = (str(files["one"]), str(files["seven"]), "--json", "--cnn", str(broken))
    proc = predict(*args, checkpoints=mnist_checkpoints, tmp_path=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "NaN" not in proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert "nan_cnn.safetensors" in line and "finite" in line.lower()
