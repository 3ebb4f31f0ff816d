"""Every shipped model loads, and reaches on the real test split what checkpoints/README.md says: networks,
scikit-learn baselines (through the type allowlist) and the pretrained encoders."""

import dataclasses
import shlex
from pathlib import Path

import pytest

from vitdemo.checkpoints import load_checkpoint, read_meta
from vitdemo.cli.families import classic_run_from_args, model_from_args
from vitdemo.cli.main import _check_start_files, build_parser, config_from_args
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import Split, load_raw
from vitdemo.models.classic import ALLOWED_TYPES, file_types, load_classic, read_header, score_classic
from vitdemo.paths import REPO_ROOT, shipped_dir
from vitdemo.pretrain import ENCODER_TAG, is_pretrained_encoder
from vitdemo.runs.baselines import encoders, sync_baselines
from vitdemo.runs.store import Registry
from vitdemo.shipped import (
    DRAWN_PER_CLASS,
    classic_command,
    command_block,
    earlier_sittings,
    is_reader_file,
    measure_reader,
    measure_test_accuracy,
    parse_table,
    percent,
    pretrain_command,
    reader_row,
    reproduce_commands,
    total_train_time_s,
    train_command,
)
from vitdemo.synth.drawn import drawn_accuracy

SHIPPED_DIR = shipped_dir()  # $VITDEMO_CHECKPOINTS, else the repository's checkpoints/
ENCODERS = sorted(e.path for e in encoders(SHIPPED_DIR))
NETWORKS = [p for p in sorted(SHIPPED_DIR.glob("*.safetensors")) if p not in ENCODERS]
READERS = [p for p in NETWORKS if is_reader_file(p)]  # number readers: whole-number accuracy, their own table
SHIPPED = [p for p in NETWORKS if p not in READERS]  # the digit classifiers
CLASSIC = sorted(SHIPPED_DIR.glob("*.skops"))
README_TEXT = (SHIPPED_DIR / "README.md").read_text() if (SHIPPED_DIR / "README.md").exists() else ""
TABLE = parse_table(README_TEXT)
MAX_BYTES = 5 * 1024 * 1024
CLASSIC_FLOORS = {"logreg": 0.90, "svm": 0.97, "forest": 0.93}  # on the first 2,000 test images


def test_mnist_models_are_shipped() -> None:
    names = {p.name for p in [*SHIPPED, *CLASSIC, *ENCODERS, *READERS]}
    assert {"vit_mnist.safetensors", "cnn_mnist.safetensors"} <= names
    assert set(TABLE) == names, "checkpoints/README.md must list every shipped file"
    assert all(p.stat().st_size <= MAX_BYTES for p in SHIPPED_DIR.iterdir() if p.name != "README.md")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoint_reaches_its_documented_accuracy(path: Path, data_dir: Path) -> None:
    loaded = load_checkpoint(path)
    assert path.stat().st_size <= 5 * 1024 * 1024
    documented = percent(TABLE[path.name]["test acc"])
    assert documented is not None
    measured = measure_test_accuracy(loaded, data_dir)
    assert measured == pytest.approx(documented, abs=0.0005)  # 0.05 points


@pytest.mark.parametrize("kind", ["vit", "cnn"])
def test_mnist_models_read_drawn_digits(kind: str) -> None:
    path = SHIPPED_DIR / f"{kind}_mnist.safetensors"
    acc = drawn_accuracy({kind: load_checkpoint(path)}, DRAWN_PER_CLASS)[kind]
    documented = percent(TABLE[path.name]["drawn acc"])
    assert acc == pytest.approx(documented, abs=1 / (10 * DRAWN_PER_CLASS) + 1e-9)  # at most one drawing apart
    assert acc >= 0.90, f"{kind} reads only {acc:.1%} of drawn digits"


@pytest.mark.parametrize("path", READERS, ids=lambda p: p.stem)
def test_a_shipped_reader_is_documented_with_the_figures_its_run_measured(path: Path) -> None:
    """A reader's figures come from its run's scoring on the fixed test numbers (re-measuring the detector's
    12,000 images here would take minutes: `python -m vitdemo evaluate FILE` does it)."""
    row = TABLE[path.name]
    assert path.stat().st_size <= 10 * 1024 * 1024
    assert "| " + " | ".join(row.values()) + " |" == reader_row(measure_reader(path))


def test_a_file_trained_in_several_sittings_lists_each_command_oldest_first() -> None:
    first = dataclasses.asdict(TrainConfig(model=CNNConfig(), epochs=3))
    second = {**first, "epochs": 5, "init": "checkpoints/x.safetensors"}
    third = {**first, "epochs": 7, "init": "checkpoints/x.safetensors"}
    meta = dataclasses.replace(read_meta(SHIPPED_DIR / "cnn_mnist.safetensors"), train_config=third,
                               metrics={"base_train_config": [first, second]})  # fmt: skip
    lines = reproduce_commands(meta, "checkpoints/x.safetensors").splitlines()
    assert [line.split("--epochs ")[1].split()[0] for line in lines] == ["3", "5", "7"]
    assert "--init" not in lines[0] and all("--init checkpoints/x.safetensors" in line for line in lines[1:])


def test_a_sitting_that_resumed_the_run_before_it_is_written_as_a_resume() -> None:
    """Its settings are the run's own (a resumed run keeps them); a full command would train from scratch."""
    first = dataclasses.asdict(TrainConfig(model=CNNConfig(), epochs=26))
    second = {**first, "epochs": 40, "resume": "run-5.resume.safetensors"}
    meta = dataclasses.replace(read_meta(SHIPPED_DIR / "cnn_mnist.safetensors"), train_config=second,
                               metrics={"base_train_config": first})  # fmt: skip
    lines = reproduce_commands(meta, "checkpoints/x.safetensors").splitlines()
    assert "--epochs 26" in lines[0] and "--resume" not in lines[0]
    assert lines[1] == "python -m vitdemo train --resume RUN --epochs 40 --out checkpoints/x.safetensors"
    args = build_parser().parse_args(shlex.split(lines[1])[3:])
    assert (args.resume, args.epochs, args.out) == ("RUN", 40, "checkpoints/x.safetensors")


def test_a_fine_tunes_training_time_includes_its_base_version() -> None:
    # The captioner's row said 16.5 min: the fine-tune's own minutes, not the 20.6 of the version it went on from.
    assert total_train_time_s({"train_time_s": 990.0, "base_train_time_s": 1236.0}) == 2226.0
    assert total_train_time_s({"train_time_s": 60.0}) == 60.0


@pytest.mark.parametrize("path", [*SHIPPED, *READERS], ids=lambda p: p.stem)
def test_documented_command_reproduces_the_stored_config(path: Path) -> None:
    """The command written under each checkpoint parses back to exactly the settings it was trained with (a
    fine-tune's `init` is stored relative to the repository; the command line makes it absolute)."""
    meta = load_checkpoint(path).meta
    trained_with = meta.train_config
    commands = reproduce_commands(meta, f"checkpoints/{path.name}")
    assert command_block(path.name, commands) in README_TEXT
    command = commands.splitlines()[-1]  # a fine-tune of the file's earlier version: its base's command first
    assert command == train_command(trained_with, f"checkpoints/{path.name}")
    stored = TrainConfig.from_dict(trained_with)
    if stored.resume:  # a sitting that resumed the run of the line before it: the same settings, a longer schedule
        before = TrainConfig.from_dict(earlier_sittings(meta.metrics)[-1])
        assert stored == dataclasses.replace(before, epochs=stored.epochs, resume=stored.resume)
        assert stored.epochs > before.epochs and f"--resume RUN --epochs {stored.epochs}" in command
        return
    args = build_parser().parse_args(shlex.split(command)[3:])
    parsed = _check_start_files(config_from_args(args))  # as `train` does: it reads init_method off init's header
    if stored.init:
        assert Path(parsed.init) == Path(stored.init).resolve()
        assert (REPO_ROOT / stored.init).is_file()  # it names a shipped file: an encoder, or the model it tunes
        parsed = dataclasses.replace(parsed, init=stored.init)
    assert parsed == dataclasses.replace(stored, device=args.device)


@pytest.mark.parametrize("path", CLASSIC, ids=lambda p: p.stem)
def test_shipped_classic_files_load_through_the_allowlist_and_score(path: Path, data_dir: Path) -> None:
    assert file_types(path) <= ALLOWED_TYPES
    fitted = load_classic(path)  # only the allowlisted types are trusted
    test = load_raw(fitted.dataset, train=False, data_dir=data_dir)
    head = Split(test.images[:2000], test.labels[:2000])
    floor = CLASSIC_FLOORS[fitted.config.kind]
    acc = score_classic(fitted, head).accuracy
    assert acc >= floor, f"{path.name}: {acc:.2%} on 2,000 test images, under {floor:.0%}"
    documented = percent(TABLE[path.name]["test acc"])
    assert score_classic(fitted, test).accuracy == pytest.approx(documented, abs=0.0005)
    header = read_header(path)
    command = classic_command(header, f"checkpoints/{path.name}")
    assert command_block(path.name, command) in README_TEXT
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert classic_run_from_args(args) == header.run()  # the command fits the same run again


def test_knn_is_not_shipped_and_the_readme_says_why() -> None:
    assert not any(load_classic(p).config.kind == "knn" for p in CLASSIC)
    assert "kNN is not shipped" in README_TEXT


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The shipped files listed as baseline runs (synced once into a scratch registry)."""
    reg = Registry(tmp_path_factory.mktemp("listed"))
    sync_baselines(reg, SHIPPED_DIR)
    return {r.checkpoint for r in reg.list_runs()}


@pytest.mark.parametrize("path", ENCODERS, ids=lambda p: p.stem)
def test_shipped_encoders_are_documented_and_never_listed_as_runs(path: Path, listed: set[str]) -> None:
    meta = read_meta(path)
    assert is_pretrained_encoder(meta) and path.name in TABLE
    assert int(TABLE[path.name]["epochs"]) == meta.metrics["pretrain"]["epochs"]
    command = pretrain_command(meta, f"checkpoints/{path.name}")
    assert command_block(path.name, command) in README_TEXT
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert args.epochs == meta.metrics["pretrain"]["epochs"] and args.method == meta.metrics[ENCODER_TAG]
    assert model_from_args(args, meta.model_config.kind) == meta.model_config
    assert listed and str(path.resolve()) not in listed


def test_command_round_trips_a_split_seed_and_leaves_it_out_when_default() -> None:
    config = TrainConfig(model=CNNConfig(width=12), seed=5, split_seed=3, epochs=2)
    command = train_command(config.to_dict(), "out.safetensors")
    assert "--split-seed 3" in command and "--seed 5" in command
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert config_from_args(args) == config
    # shipped checkpoints were trained before split_seed existed (their split came from seed 0): unchanged commands
    assert "--split-seed" not in train_command(dataclasses.replace(config, split_seed=0).to_dict(), "o")
