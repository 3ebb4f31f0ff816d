"""The recipe a student would find first: pytorch/examples `mnist/main.py`, timed on this machine so that the
benchmark's figures read as ratios to it (these machines are noisy; a ratio measured in one run is not).

Its network (two 3x3 convs, max-pool, dropout, two dense layers: 1.2 M parameters), Adadelta at lr 1.0 with
StepLR(gamma 0.7) per epoch, batch 64 through torchvision's MNIST and a DataLoader (ToTensor, Normalize), one
epoch over the 60,000 training images, then the 10,000 test images: exactly the example's defaults, written out
here because the example is a script, not a library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.data import normalization


class ReferenceNet(nn.Module):
    """pytorch/examples mnist `Net`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))  # (B, 64, 24, 24)
        x = self.dropout1(F.max_pool2d(x, 2)).flatten(1)  # (B, 9216)
        x = self.dropout2(F.relu(self.fc1(x)))  # (B, 128)
        return F.log_softmax(self.fc2(x), dim=1)  # (B, 10)


@dataclass(frozen=True)
class ReferenceEpoch:
    seconds: float  # wall time of the first epoch's training (the DataLoader included, the test pass not)
    images: int  # images trained on
    test_acc: float  # after that epoch, on the t10k test split (its first 1,000 images when max_batches is set)

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def _loaders(data_dir: str | None, batch_size: int) -> tuple:
    from torchvision import datasets, transforms

    from vitdemo.paths import data_root

    mean, std = normalization("mnist")
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    root = str(data_root(data_dir))
    train = datasets.MNIST(root, train=True, download=False, transform=transform)
    test = datasets.MNIST(root, train=False, download=False, transform=transform)
    return (
        torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
        torch.utils.data.DataLoader(test, batch_size=1000),
    )


def reference_first_epoch(
    data_dir: str | None = None, device: str = "cpu", *, max_batches: int | None = None, seed: int = 1
) -> ReferenceEpoch:
    """Train the reference recipe for its first epoch and test it on t10k; for tests, `max_batches` of training
    and the first 1,000 test images (the full test pass costs more than a few training batches)."""
    torch.manual_seed(seed)  # the example's default --seed
    dev = torch.device(device)
    train_loader, test_loader = _loaders(data_dir, 64)
    model = ReferenceNet().to(dev)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    model.train()
    seen, start = 0, time.perf_counter()
    for i, (x, y) in enumerate(train_loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(dev), y.to(dev)
        optimizer.zero_grad()
        F.nll_loss(model(x), y).backward()
        optimizer.step()
        seen += len(y)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    scheduler.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for i, (x, y) in enumerate(test_loader):
            if max_batches is not None and i >= 1:
                break
            correct += int((model(x.to(dev)).argmax(1).cpu() == y).sum())
            total += len(y)
    return ReferenceEpoch(seconds, seen, correct / max(total, 1))
