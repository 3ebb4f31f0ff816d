"""Does self-supervised pretraining help with 100 labels? Pretrain on the 55k unlabelled training images, then
fine-tune (and linear-probe) with a class-balanced label budget; compare with the same model from scratch.

    VITDEMO_DATA_DIR=/work/shared/data VITDEMO_THREADS=1 python scripts/bench_pretrain.py --method simclr --epochs 1

Everything goes through the same fine-tuning loop and is scored on the 10k test split.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, ViTConfig
from vitdemo.data import load_dataset
from vitdemo.models.cnn import CNN
from vitdemo.models.vit import ViT
from vitdemo.pretrain import MAE, FinetuneConfig, PretrainConfig, SimCLR, finetune, label_budget, pretrain
from vitdemo.train import configure_cpu_threads


def _row(name: str, acc: float, seconds: float) -> None:
    print(f"{name:34} test acc {acc:.4f}   {seconds:7.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["mae", "simclr"], required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("/tmp/pretrain"))
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3], help="fine-tuning peak rates to try")
    parser.add_argument("--skip-scratch", action="store_true")
    args = parser.parse_args()
    configure_cpu_threads()
    data = load_dataset("mnist", val_size=5000, seed=0)
    idx = label_budget(data.train.labels, args.labels, seed=0)
    make = (lambda: ViT(ViTConfig())) if args.method == "mae" else (lambda: CNN(CNNConfig()))
    name = "ViT" if args.method == "mae" else "CNN"
    print(f"{args.method}: {args.epochs} epoch(s) on {len(data.train)} images; {len(idx)} labels, {args.steps} steps")
    for lr in [] if args.skip_scratch else args.lrs:
        torch.manual_seed(0)
        scratch = finetune(make(), data, idx, FinetuneConfig(steps=args.steps, lr=lr))
        _row(f"{name} from scratch, lr {lr:g}", scratch.test_acc, scratch.train_time_s)

    torch.manual_seed(0)
    objective = MAE(make()) if args.method == "mae" else SimCLR(make())
    start = time.perf_counter()
    losses = pretrain(objective, data.train.images, PretrainConfig(epochs=args.epochs), mean=data.mean, std=data.std)
    pre_s = time.perf_counter() - start
    print(f"pretraining: {pre_s:.0f} s, loss per epoch {[round(v, 4) for v in losses]}", flush=True)
    encoder = objective.encoder
    path = save_checkpoint(
        args.out / f"{args.method}_{name.lower()}_mnist.safetensors",
        encoder,
        make_meta(encoder.config, "mnist", metrics={"pretrain": args.method, "epochs": args.epochs}),
    )
    print(f"encoder saved: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    probe = finetune(encoder, data, idx, FinetuneConfig(steps=args.steps, probe=True, lr=3e-3))
    _row(f"{name} {args.method} + linear probe", probe.test_acc, probe.train_time_s)
    for lr in args.lrs:
        encoder.load_state_dict(state)
        encoder.requires_grad_(True)
        tuned = finetune(encoder, data, idx, FinetuneConfig(steps=args.steps, lr=lr))
        _row(f"{name} {args.method} + fine-tune, lr {lr:g}", tuned.test_acc, tuned.train_time_s)


if __name__ == "__main__":
    main()
