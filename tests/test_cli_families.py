"""The model families on the command line, end to end in real subprocesses on tiny subsets:
`classic`, `pretrain`, `train --model linear|mlp|transfer`, `--init/--labels/--probe` and `--recipe`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vitdemo.checkpoints import load_checkpoint, read_meta
from vitdemo.config import CNNConfig, MLPConfig, TrainConfig, TransferConfig
from vitdemo.models.classic import load_classic
from vitdemo.pretrain import is_pretrained_encoder
from vitdemo.runs.store import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["--train-subset", "600", "--val-size", "200", "--epochs", "1", "--batch-size", "100", "--device", "cpu"]
TINY_VIT = ["--patch-size", "7", "--embed-dim", "32", "--depth", "2", "--num-heads", "2"]


def vitdemo(
    *args: str, data_dir: Path, home: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vitdemo", *args, "--data-dir", str(data_dir)]
    if home is not None:
        cmd += ["--home", str(home)]
    environ = {**os.environ, "VITDEMO_THREADS": os.environ.get("VITDEMO_THREADS", "1"), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=environ)


def the_run(home: Path) -> dict:
    (run,) = Registry(home).list_runs()
    assert run.status == "done", run.error
    return {"run": run, "config": run.config, "checkpoint": Path(run.checkpoint)}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classic_fits_scores_and_saves_as_a_run(tmp_path: Path, data_dir: Path, capsys) -> None:
    """`classic` records a run like `train` (listed, evaluated, compared like every other run); --out copies its
    file; `evaluate` scores the file through the same classic scoring."""
    out, home = tmp_path / "knn.skops", tmp_path / "home"
    proc = vitdemo(
        "classic", "--kind", "knn", "--train-subset", "1000", "--out", str(out), "--json", home=home, data_dir=data_dir
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["kind"] == "knn" and row["train_images"] == 1000 and row["train_time_s"] > 0
    assert 0.7 < row["test_acc"] <= 1 and 0.7 < row["macro_f1"] <= 1 and 0.7 < row["val_acc"] <= 1
    back = load_classic(out)
    assert back.config.kind == "knn" and back.metrics["test_acc"] == row["test_acc"]
    assert f"run #{row['run']}: knn on 1,000 mnist training images" in proc.stderr and "saved" in proc.stderr
    run = the_run(home)["run"]
    assert run.kind == "knn" and run.test_acc == row["test_acc"] and run.macro_f1 == row["macro_f1"]
    assert run.name == "knn-mnist-k3-pca30-n1000" and run.checkpoint.endswith(f"run-{run.id}.skops")
    assert run.num_params == back.metrics["num_params"] > 0
    from vitdemo.cli.families import evaluate_classic

    capsys.readouterr()
    assert evaluate_classic(Path(run.checkpoint), argparse.Namespace(data_dir=str(data_dir), json=True)) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["accuracy"] == row["test_acc"] and scored["macro_f1"] == pytest.approx(row["macro_f1"])


def test_pretrain_then_a_probe_with_100_labels(tmp_path: Path, data_dir: Path) -> None:
    encoder = tmp_path / "mae.safetensors"
    proc = vitdemo(
        "pretrain", "--method", "mae", *TINY_VIT, "--train-subset", "512", "--epochs", "1", "--batch-size", "128",
        "--out", str(encoder), data_dir=data_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stderr and "mae vit encoder: loss per epoch" in proc.stdout
    meta = read_meta(encoder)
    assert is_pretrained_encoder(meta) and meta.metrics["pretrain_images"] == 512
    home = tmp_path / "home"
    proc = vitdemo(
        "train", "--model", "vit", *TINY_VIT, *TINY, "--init", str(encoder), "--labels", "100", "--probe",
        home=home, data_dir=data_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = the_run(home)
    assert run["config"]["labels"] == 100 and run["config"]["probe"] and run["config"]["init"] == str(encoder)
    assert run["run"].name == "vit-mnist-p7-d32x2-e1-l100-init-probe"
    start = load_checkpoint(encoder).model.state_dict()
    trained = load_checkpoint(run["checkpoint"]).model.state_dict()
    body = [k for k in start if not k.startswith("head.")]
    assert all(torch.equal(start[k], trained[k]) for k in body)  # the probe kept the encoder
    assert not torch.equal(start["head.weight"], trained["head.weight"])


@pytest.mark.parametrize(
    "flags, kind",
    [(["--model", "mlp", "--hidden", "32,16"], "mlp"), (["--model", "linear"], "linear")],
    ids=["mlp", "linear"],
)
def test_train_a_ladder_model(tmp_path: Path, data_dir: Path, flags: list[str], kind: str) -> None:
    proc = vitdemo("train", *flags, *TINY, "--lr", "4e-3", home=tmp_path, data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = the_run(tmp_path)
    loaded = load_checkpoint(run["checkpoint"])
    assert loaded.kind == kind and run["run"].kind == kind and run["run"].test_acc > 0.3  # 600 images, 1 epoch
    if kind == "mlp":
        assert loaded.meta.model_config == MLPConfig(hidden=(32, 16))


def test_train_a_transfer_model_from_a_weights_file(tmp_path: Path, data_dir: Path) -> None:
    """No network: the ImageNet weights come from --weights (AlexNet's torchvision keys, random, fp16), and the
    trained checkpoint then loads with that file gone and an empty torch hub cache."""
    import torchvision.models as tvm

    torch.manual_seed(0)
    weights = tmp_path / "alexnet.pth"
    torch.save({f"features.{k}": v.half() for k, v in tvm.alexnet().features.state_dict().items()}, weights)
    env = {"TORCH_HOME": str(tmp_path / "torch")}
    flags = ["--model", "transfer", "--arch", "alexnet", "--image-px", "64", "--finetune", "head"]
    proc = vitdemo("train", *flags, *TINY, "--weights", str(weights), home=tmp_path, data_dir=data_dir, env=env)
    assert proc.returncode == 0, proc.stderr
    run = the_run(tmp_path)
    assert run["config"]["weights_path"] == str(weights) and run["run"].name.startswith("transfer-mnist-alexnet")
    from vitdemo.models.transfer import backbone_state

    expected = backbone_state("alexnet", {k: v.float() for k, v in torch.load(weights, weights_only=True).items()})
    weights.unlink()
    loaded = load_checkpoint(run["checkpoint"])
    assert loaded.meta.model_config == TransferConfig(arch="alexnet", image_px=64, finetune="head")
    backbone = loaded.model.backbone.state_dict()
    assert all(torch.equal(backbone[k], v) for k, v in expected.items())  # the file's weights, kept frozen
    assert not (tmp_path / "torch").exists()


def test_the_seed_recipe_with_overrides() -> None:
    """Parsing only (the recipe trains like any ViT run; its 1-epoch check is in the report, not a test)."""
    from vitdemo.cli.main import build_parser, config_from_args
    from vitdemo.training.recipes import SEED_VIT

    args = build_parser().parse_args(["train", "--recipe", "seed-vit", "--epochs", "1", "--train-subset", "600"])
    assert config_from_args(args) == dataclasses.replace(SEED_VIT, epochs=1, train_subset=600)
    model = SEED_VIT.model
    assert (model.patch_size, model.embed_dim, model.depth, model.num_heads) == (7, 128, 4, 4)
    assert (SEED_VIT.lr, SEED_VIT.batch_size, SEED_VIT.epochs, SEED_VIT.schedule) == (3e-4, 64, 10, "constant")
    assert SEED_VIT.weight_decay == 0 and SEED_VIT.hflip and SEED_VIT.augment > 0  # Adam, rotations and flips
    args = build_parser().parse_args(["train", "--recipe", "seed-vit", "--embed-dim", "64", "--model", "vit"])
    assert config_from_args(args).model == dataclasses.replace(model, embed_dim=64)
    args = build_parser().parse_args(["train", "--recipe", "seed-vit", "--model", "cnn"])
    assert config_from_args(args).model == CNNConfig() and config_from_args(args).lr == 3e-4


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--model", "linear", "--width", "8"], "--width is not a setting of a linear model"),
        (["train", "--model", "transfer", "--no-pretrained", "--finetune", "head"], "needs pretrained=True"),
        (["train", "--model", "cnn", "--probe"], "probe needs init"),
        (["train", "--model", "cnn", "--init", "missing.safetensors"], "checkpoint not found: missing.safetensors"),
        (["train", "--model", "transfer", "--weights", "nowhere.pth"], "weights file not found"),
        (["pretrain", "--method", "simclr", "--patch-size", "7", "--out", "x"], "--patch-size is not a setting of"),
    ],
    ids=["flag", "config", "probe", "init", "weights", "pretrain"],
)
def test_mistakes_are_one_line_errors(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    """In this process (main() is the entry a subprocess runs too): nothing recorded, one line, exit status 2."""
    from vitdemo.cli.main import main

    home = tmp_path / "home"
    extra = ["--home", str(home)] if args[0] == "train" else []
    status = main([*args, *extra, "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1
    assert not (home / "runs.db").exists() or Registry(home).list_runs() == []


def test_an_init_of_another_kind_is_refused_before_a_run_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.cli.main import main
    from vitdemo.models import build_model

    cnn = CNNConfig(width=4)
    path = save_checkpoint(tmp_path / "cnn.safetensors", build_model(cnn), make_meta(cnn, "mnist"))
    assert main(["train", "--model", "vit", "--init", str(path), "--home", str(tmp_path / "home")]) == 2
    assert "--init holds a cnn model but this run trains a vit" in capsys.readouterr().err
    from vitdemo.cli.main import _check_start_files
    from vitdemo.families.detector import DetectorConfig

    cnn8 = CNNConfig(width=8)
    path = save_checkpoint(tmp_path / "cnn8.safetensors", build_model(cnn8), make_meta(cnn8, "mnist"))
    detector = TrainConfig(model=DetectorConfig(width=8), init=str(path))  # a reader borrows a digit CNN's layers
    assert _check_start_files(detector).init_method == "supervised"
    lean = CNNConfig(width=8, design="lean")  # its 5x5 first conv fits no backbone layer
    lean_file = save_checkpoint(tmp_path / "lean.safetensors", build_model(lean), make_meta(lean, "mnist"))
    args = ["train", "--model", "detector", "--init", str(lean_file), "--home", str(tmp_path / "home")]
    assert main(args) == 2 and "has no layer of the shape" in capsys.readouterr().err
    assert not (tmp_path / "home" / "registry.sqlite").exists() or Registry(tmp_path / "home").list_runs() == []


def test_a_run_records_whether_its_init_is_an_encoder_or_a_classifier(tmp_path: Path) -> None:
    """The family shown for a run depends on it: from a trained classifier it stays a CNN, from SimCLR it is pretrained."""
    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.cli.main import _check_start_files
    from vitdemo.models import build_model
    from vitdemo.runconfig import ENCODER_TAG
    from vitdemo.views.names import family_of

    cnn = CNNConfig(width=4)
    classifier = save_checkpoint(tmp_path / "cnn.safetensors", build_model(cnn), make_meta(cnn, "mnist"))
    meta = make_meta(cnn, "mnist", metrics={ENCODER_TAG: "simclr"})
    encoder = save_checkpoint(tmp_path / "simclr.safetensors", build_model(cnn), meta)
    tuned = _check_start_files(TrainConfig(model=cnn, init=str(classifier)))
    probed = _check_start_files(TrainConfig(model=cnn, init=str(encoder), probe=True))
    assert (tuned.init_method, probed.init_method) == ("supervised", "simclr")
    assert family_of("cnn", tuned.to_dict()) == "cnn" and family_of("cnn", probed.to_dict()) == "pretrained"
    assert _check_start_files(TrainConfig(model=cnn)).init_method == ""


@pytest.mark.parametrize("command", ["classic", "pretrain"])
def test_new_verbs_have_help(command: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "vitdemo", command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage:" in proc.stdout
