"""Self-supervised pretraining (MAE for the ViT, SimCLR for the CNN) and few-label fine-tuning."""

from vitdemo.pretrain.finetune import LABEL_BUDGETS, FinetuneConfig, FinetuneResult, finetune, label_budget
from vitdemo.pretrain.loop import PretrainConfig, PretrainStep, pretrain
from vitdemo.pretrain.mae import MAE, MAEConfig, Reconstruction, reconstruct
from vitdemo.pretrain.simclr import SimCLR, SimCLRConfig, nt_xent

__all__ = [
    "LABEL_BUDGETS",
    "MAE",
    "FinetuneConfig",
    "FinetuneResult",
    "MAEConfig",
    "PretrainConfig",
    "PretrainStep",
    "Reconstruction",
    "SimCLR",
    "SimCLRConfig",
    "finetune",
    "label_budget",
    "nt_xent",
    "pretrain",
    "reconstruct",
]
