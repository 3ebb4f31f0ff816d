"""The command line, end to end, in real subprocesses: train -> evaluate -> predict -> leaderboard."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

TINY = ["--train-subset", "1500", "--val-size", "300", "--epochs", "1", "--batch-size", "100", "--device", "cpu"]


def vitdemo(*args: str, home: Path, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vitdemo", *args]
    if args[0] != "bench":
        cmd += ["--home", str(home)]
    cmd += ["--data-dir", str(data_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    home = tmp_path_factory.mktemp("cli-home")
    out = {"home": home}
    for kind, extra in (("cnn", ["--width", "8"]), ("vit", ["--patch-size", "7", "--embed-dim", "32", "--depth", "2"])):
        path = home / f"{kind}.safetensors"
        proc = vitdemo(
            "train", "--model", kind, *extra, *TINY, "--lr", "4e-3", "--out", str(path), home=home, data_dir=data_dir
        )
        assert "done: val" in proc.stdout and path.is_file()
        # stderr is a pipe here, not a terminal: one line per epoch, no carriage-return progress bar flooding logs
        assert "epoch 1/1: train loss" in proc.stderr and "\r" not in proc.stderr
        out[kind] = path
    return out


def test_train_records_runs_with_metrics(trained: dict[str, Path], data_dir: Path) -> None:
    proc = vitdemo("leaderboard", "--json", home=trained["home"], data_dir=data_dir)
    runs = [r for r in json.loads(proc.stdout) if not r["baseline"]]
    assert {r["kind"] for r in runs} == {"cnn", "vit"}
    for r in runs:
        assert r["status"] == "done" and 0.1 < r["test_acc"] <= 1 and r["macro_f1"] > 0
        assert r["config"]["train_subset"] == 1500 and Path(r["checkpoint"]).is_file()


def test_evaluate_by_run_id_and_by_path_agree(trained: dict[str, Path], data_dir: Path) -> None:
    by_path = json.loads(
        vitdemo("evaluate", str(trained["cnn"]), "--json", home=trained["home"], data_dir=data_dir).stdout
    )
    text = vitdemo("evaluate", "1", home=trained["home"], data_dir=data_dir).stdout
    assert f"{by_path['accuracy']:.4%}" in text
    assert len(by_path["confusion"]) == 10 and sum(map(sum, by_path["confusion"])) == 10000


def test_predict_json_one_object_per_image_and_model(trained: dict[str, Path], data_dir: Path, tmp_path: Path) -> None:
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).line([(100, 20), (100, 180)], fill=0, width=16)  # a dark "1" on paper
    one = tmp_path / "one.png"
    img.save(one)
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    args = ("predict", str(one), str(blank), "--json", "--vit", str(trained["vit"]), "--cnn", str(trained["cnn"]))
    rows = [json.loads(line) for line in vitdemo(*args, home=trained["home"], data_dir=data_dir).stdout.splitlines()]
    assert [(r["file"], r["model"]) for r in rows] == [
        (str(one), "vit"),
        (str(one), "cnn"),
        (str(blank), "vit"),
        (str(blank), "cnn"),
    ]
    for r in rows[:2]:
        assert r["prediction"] in [str(i) for i in range(10)]
        assert np.isclose(sum(r["probabilities"]), 1.0, atol=1e-4)
    assert rows[2]["prediction"] is None and rows[2]["empty"]


def test_bad_input_gives_a_message_not_a_traceback(trained: dict[str, Path], data_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    proc = vitdemo(
        "predict",
        str(junk),
        "--vit",
        str(trained["vit"]),
        "--cnn",
        str(trained["cnn"]),
        home=trained["home"],
        data_dir=data_dir,
        check=False,
    )
    assert proc.returncode == 1 and "notes.png" in proc.stderr and "Traceback" not in proc.stderr
    proc = vitdemo(
        "train",
        "--model",
        "vit",
        "--embed-dim",
        "30",
        "--num-heads",
        "4",
        *TINY,
        home=trained["home"],
        data_dir=data_dir,
        check=False,
    )
    assert proc.returncode == 2 and "divisible" in proc.stderr
    proc = vitdemo("evaluate", "999", home=trained["home"], data_dir=data_dir, check=False)
    assert proc.returncode == 2 and "999" in proc.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "leaderboard", "bench", "worker"])
def test_every_command_has_help(command: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "vitdemo", command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_shipped_checkpoints_follow_vitdemo_checkpoints(tmp_path: Path, data_dir: Path) -> None:
    """predict's defaults and the leaderboard's baselines come from $VITDEMO_CHECKPOINTS, as in the app."""
    import os

    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.config import CNNConfig, ViTConfig
    from vitdemo.models import build_model

    shipped = tmp_path / "elsewhere"
    for kind, config in (
        ("vit", ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2)),
        ("cnn", CNNConfig(width=4)),
    ):
        meta = make_meta(config, "mnist", metrics={"test_acc": 0.5}, name=f"moved {kind}")
        save_checkpoint(shipped / f"{kind}_mnist.safetensors", build_model(config), meta)
    image = tmp_path / "one.png"
    Image.new("L", (28, 28), 0).save(image)
    env = {**os.environ, "VITDEMO_CHECKPOINTS": str(shipped)}
    base = [sys.executable, "-m", "vitdemo"]
    common = ["--home", str(tmp_path / "home"), "--data-dir", str(data_dir)]
    cwd = Path(__file__).parent.parent
    proc = subprocess.run(
        [*base, "predict", str(image), "--json", *common], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["checkpoint"] for r in rows} == {
        str(shipped / "vit_mnist.safetensors"),
        str(shipped / "cnn_mnist.safetensors"),
    }
    proc = subprocess.run(
        [*base, "leaderboard", "--json", *common], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["name"] for r in json.loads(proc.stdout) if r["baseline"]) == ["moved cnn", "moved vit"]


def test_split_seed_flag_reaches_the_config() -> None:
    from vitdemo.cli import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["train", "--seed", "4", "--split-seed", "9"]))
    assert (config.seed, config.split_seed) == (4, 9)
    assert config_from_args(build_parser().parse_args(["train"])).split_seed == 0
