"""Self-supervised pretraining (MAE for the ViT, SimCLR for the CNN) and label budgets.

Fine-tuning is an ordinary run: `TrainConfig(init=<encoder checkpoint>, labels=100, probe=...)` through
vitdemo.training.loop.train, like every other model.
"""

from vitdemo.pretrain.encoder import (
    ENCODER_TAG,
    METHODS,
    PretrainedEncoder,
    is_pretrained_encoder,
    pretrain_encoder,
    save_encoder,
)
from vitdemo.pretrain.loop import PretrainConfig, PretrainStep, pretrain
from vitdemo.pretrain.mae import MAE, MAEConfig, Reconstruction, reconstruct
from vitdemo.pretrain.simclr import SimCLR, SimCLRConfig, nt_xent
from vitdemo.training.budget import LABEL_BUDGETS, label_budget

__all__ = [
    "ENCODER_TAG",
    "LABEL_BUDGETS",
    "MAE",
    "METHODS",
    "MAEConfig",
    "PretrainConfig",
    "PretrainStep",
    "PretrainedEncoder",
    "Reconstruction",
    "SimCLR",
    "SimCLRConfig",
    "is_pretrained_encoder",
    "label_budget",
    "nt_xent",
    "pretrain",
    "pretrain_encoder",
    "reconstruct",
    "save_encoder",
]
