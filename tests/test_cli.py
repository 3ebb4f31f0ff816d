"""The command line, end to end, in real subprocesses: train -> evaluate -> predict -> leaderboard."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from seed import lock_registry

from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.local import worker_running
from vitdemo.runs.store import Registry

REPO_ROOT = Path(__file__).parent.parent

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
    assert proc.returncode == 2 and "notes.png" in proc.stderr and "Traceback" not in proc.stderr
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
    from vitdemo.cli.main import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["train", "--seed", "4", "--split-seed", "9"]))
    assert (config.seed, config.split_seed) == (4, 9)
    assert config_from_args(build_parser().parse_args(["train"])).split_seed == 0


# -- the run registry from the command line: one trainer per run, and a registry that is locked, damaged or
# read-only (real SQLite files, real processes) ------------------------------------------------------------
def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vitdemo", *args]
    env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed with exit status 2 and a single line on stderr that has every word."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def _registry_with_a_run(home: Path) -> int:
    registry = Registry(home)
    return registry.create_run(name="kept", kind="cnn", dataset="mnist", config={}, status="done", test_acc=0.5)


CLAIMER = """
import os, sys, time
from vitdemo.runs import claims, queue
from vitdemo.runs.store import Registry
reg = Registry(sys.argv[1])
print("ready", flush=True)
while True:  # claim anything queued, almost without pause
    run = claims.claim_next(reg, os.getpid())
    if run is not None:
        print("claimed", run.id, flush=True)
    time.sleep(0.001)
"""


def test_a_cli_run_is_trained_once_while_a_worker_polls(tmp_path: Path, data_dir: Path) -> None:
    """`train` beside a live worker and a claimer polling the queue without pause: neither ever gets the run.
    (The old CLI queued its run, then marked it running: a poller could take it in between and train it too.)"""
    home = tmp_path / "home"
    common = ["--home", str(home), "--data-dir", str(data_dir)]
    worker = subprocess.Popen([sys.executable, "-m", "vitdemo", "worker", "--idle-exit", "600", *common], cwd=REPO_ROOT)
    claimer = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(home)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    try:
        assert claimer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not worker_running(Registry(home), "cpu"):  # the worker holds its lock: it is polling the queue
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start"
            time.sleep(0.1)
        trainer = subprocess.Popen(
            [sys.executable, "-m", "vitdemo", "train", "--model", "cnn", "--width", "4", *TINY, *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        out, err = trainer.communicate(timeout=300)
    finally:
        worker.kill()
        claimer.kill()
        worker.wait()
        claimed = claimer.communicate()[0]
    assert trainer.returncode == 0, err
    assert "claimed" not in claimed
    (run,) = Registry(home).list_runs()
    assert run.status == "done" and run.worker_pid == trainer.pid  # a claim would have made it the claimer's
    assert "run #1 done" in out and err.count("epoch 1/1: train loss") == 1


def test_leaderboard_on_a_locked_registry(tmp_path: Path, checkpoints_dir: Path) -> None:
    home = tmp_path / "home"
    _registry_with_a_run(home)
    env = {"VITDEMO_HOME": str(home), "VITDEMO_CHECKPOINTS": str(checkpoints_dir)}  # baselines not yet registered
    holder = lock_registry(home / "registry.sqlite", shut_out_readers=False)
    try:  # writes wait (the baselines are skipped, with a note), reads go on: the old CLI hung 30 s, then a traceback
        proc = cli("leaderboard", env=env, timeout=25)
        assert proc.returncode == 0 and "kept" in proc.stdout, proc.stderr
        assert "note: the shipped baselines were not registered" in proc.stderr and "busy" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    holder = lock_registry(home / "registry.sqlite", shut_out_readers=True)
    try:  # nobody can read: a clear "busy, try again" within seconds
        t0 = time.monotonic()
        proc = cli("leaderboard", env=env, timeout=25)
        print(f"\nleaderboard on a locked registry: exit {proc.returncode} after {time.monotonic() - t0:.1f} s")
        one_line_error(proc, "busy", "try again")
        one_line_error(cli("evaluate", "1", env=env, timeout=25), "busy", "try again")
    finally:
        holder.kill()
        holder.wait()
    shown = json.loads(cli("leaderboard", "--json", env=env).stdout)  # once free, the baselines are registered
    assert sum(r["baseline"] for r in shown) == len(sync_baselines(Registry(tmp_path / "all"), checkpoints_dir)) > 0


def test_a_damaged_registry_is_refused_by_every_verb(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "registry.sqlite"
    env = {"VITDEMO_HOME": str(home), "VITDEMO_CHECKPOINTS": str(tmp_path / "none")}
    db.write_bytes(b"")  # the old CLI silently made a new registry here, and handed out run #1 again
    for args in (["leaderboard"], ["evaluate", "1"], ["train", "--model", "cnn", *TINY]):
        one_line_error(cli(*args, env=env), str(db), "move it aside")
    assert db.read_bytes() == b""  # never recreated
    db.write_bytes(b"<html>this is not a database</html>\n" * 40)
    one_line_error(cli("leaderboard", env=env), str(db), "move it aside")


def test_leaderboard_reads_a_read_only_home(tmp_path: Path, checkpoints_dir: Path) -> None:
    """A read-only VITDEMO_HOME (as root: the command runs without CAP_DAC_OVERRIDE, so permission bits apply)."""
    home = tmp_path / "home"
    _registry_with_a_run(home)
    env = {"VITDEMO_HOME": str(home), "VITDEMO_CHECKPOINTS": str(checkpoints_dir)}
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    if os.geteuid() != 0:
        prefix = []
    elif shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's permission override")
    (home / "registry.sqlite").chmod(0o444)
    home.chmod(0o555)
    try:
        cmd = [*prefix, sys.executable, "-m", "vitdemo", "leaderboard"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, **env})
        train = subprocess.run([*cmd[:-1], "train", *TINY], capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    finally:
        home.chmod(0o755)
    assert proc.returncode == 0 and "kept" in proc.stdout, proc.stderr
    assert "note: the shipped baselines were not registered" in proc.stderr
    one_line_error(train, "could not be written")


def test_errors_are_one_line_for_every_verb(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where the home folder should be")
    one_line_error(cli("worker", "--idle-exit", "0", "--home", str(not_a_folder)))  # an OSError
    one_line_error(cli("train", *TINY, "--home", str(not_a_folder)), "run registry")  # a RegistryError
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    one_line_error(cli("evaluate", str(junk), "--home", str(tmp_path)), "junk.safetensors")  # a CheckpointError


def test_handwriting_flags_reach_the_config() -> None:
    from vitdemo.cli.main import build_parser, config_from_args

    args = ["train", "--stroke-aug", "0.75", "--elastic", "1", "--styles-ratio", "0.08"]
    config = config_from_args(build_parser().parse_args(args))
    assert (config.stroke_aug, config.elastic, config.styles_ratio) == (0.75, 1.0, 0.08)
    assert config_from_args(build_parser().parse_args(["train"])).styles_ratio == 0.0


def test_resume_continues_a_run_from_its_last_epoch(tmp_path: Path, data_dir: Path, capsys) -> None:
    from vitdemo.cli.main import main

    home = tmp_path / "home"
    first = ["--model", "cnn", "--width", "4", "--depth", "1", "--stroke-aug", "0.5", "--elastic", "1"]
    vitdemo("train", *first, *TINY, home=home, data_dir=data_dir)
    assert (home / "checkpoints" / "run-1.resume.safetensors").is_file()

    proc = vitdemo("train", "--resume", "1", "--epochs", "2", home=home, data_dir=data_dir)
    assert "run #2 done" in proc.stdout and "epoch 2/2" in proc.stderr and "epoch 1/2" not in proc.stderr
    reg = Registry(home)
    run = reg.get_run(2)
    assert run.config["resume"] == str((home / "checkpoints" / "run-1.resume.safetensors").resolve())
    assert (run.config["epochs"], run.config["stroke_aug"], run.config["elastic"]) == (2, 0.5, 1.0)
    assert [e["epoch"] for e in reg.epochs(2)] == [1, 2]  # the record holds the whole curve

    for args, message in (
        (("--resume", "1", "--lr", "0.1"), "--lr cannot be given with --resume"),
        (("--resume", "2"), "already trained 2 epochs"),
        (("--resume", "9"), "no run #9"),
    ):
        capsys.readouterr()
        assert main(["train", *args, "--home", str(home), "--data-dir", str(data_dir)]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_evaluate_scores_a_shipped_scikit_learn_file(checkpoints_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    """`evaluate` on a .skops file: the classic path (it used to try to read it as a safetensors checkpoint)."""
    env = {"VITDEMO_HOME": str(tmp_path / "home"), "VITDEMO_DATA_DIR": str(data_dir)}
    proc = cli("evaluate", str(checkpoints_dir / "logreg_mnist.skops"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert 0.9 < json.loads(proc.stdout.splitlines()[-1])["accuracy"] < 0.95  # 92.64% measured


def test_extra_data_class_with_an_empty_class_set_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    env = {"VITDEMO_HOME": str(tmp_path / "home"), "VITDEMO_DATA_DIR": str(data_dir)}
    proc = cli("train", "--model", "cnn", "--epochs", "1", "--train-subset", "200", "--extra-data", "class", env=env)
    one_line_error(proc, "class set", "no mnist drawings")
