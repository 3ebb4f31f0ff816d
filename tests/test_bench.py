"""The benchmark prints figures (never asserts speed); here it only has to run and measure what it says."""

import re
import subprocess
import sys
from pathlib import Path

import torch

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.training.bench import time_to_accuracy, train_throughput
from vitdemo.training.reference import reference_first_epoch


def test_time_to_accuracy_stops_at_the_target_and_reports_test_accuracy(data_dir: Path) -> None:
    config = TrainConfig(
        model=CNNConfig(width=8), epochs=3, lr=4e-3, train_subset=2000, val_size=500, augment=0, device="cpu"
    )
    t = time_to_accuracy(config, 0.5, str(data_dir))  # a tiny CNN passes 50% within its first epoch
    assert t.reached_s is not None and t.epoch == 1 and t.val_acc >= 0.5
    assert 0 < t.reached_s <= t.train_time_s and 0.4 < t.test_acc <= 1
    never = time_to_accuracy(config, 1.01, str(data_dir))
    assert never.reached_s is None and never.epoch == 3  # ran the whole recipe


def test_train_throughput_times_the_trainers_step() -> None:
    config = TrainConfig(model=CNNConfig(width=4), batch_size=32, device="cpu")
    assert train_throughput(config, torch.device("cpu"), steps=2) > 0


def test_quick_bench_prints_latency_pipeline_and_reference_figures(data_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vitdemo", "bench", "--quick", "--vs-reference", "--reference-batches", "3",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert len(re.findall(r"training throughput +[\d,]+ images/s", out)) == 2
    assert len(re.findall(r"inference, 1 image +median +[\d.]+ ms +p95 +[\d.]+ ms", out)) == 2
    assert re.search(r"attention rollout +median", out) and re.search(r"integrated gradients +median", out)
    assert re.search(r"Draw page pipeline for the models above .*median +[\d.]+ ms", out)
    assert re.search(r"Draw page pipeline for the shipped checkpoints .*median +[\d.]+ ms", out)
    assert len(re.findall(r"the same drawing again \(a rerun of the page; answers cached\): +median", out)) == 2
    assert re.search(r"features: .*bf16 autocast .*; compile off; \d+ threads", out)
    assert re.search(r"reference: pytorch/examples mnist .*\nfirst epoch +[\d.]+ s, [\d,]+ images/s, test", out)
    assert len(re.findall(r"images/s \(batch \d+\) \([\d.]+x the reference\)", out)) == 2
    assert "time to" not in out  # --quick skips training to a target


def test_the_reference_recipe_trains_and_tests(data_dir: Path) -> None:
    ref = reference_first_epoch(str(data_dir), max_batches=20)
    assert ref.images == 20 * 64 and ref.seconds > 0 and ref.images_per_s > 0
    assert 0.3 < ref.test_acc <= 1  # 20 steps of Adadelta at lr 1.0 already read a third of the first 1,000 test digits
