"""A terminal progress bar as a training callback (no tqdm needed)."""

from __future__ import annotations

import sys
from typing import TextIO

from vitdemo.training.loop import Callback, EpochInfo, StepInfo


class ProgressBar(Callback):
    """A bar redrawn in place on a terminal; in a log file (not a tty) only the per-epoch lines, so logs stay short."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30, live: bool | None = None) -> None:
        self.stream, self.width = stream, width
        self.live = stream.isatty() if live is None else live

    def on_step(self, info: StepInfo) -> None:
        if not self.live or (info.step % 10 and info.step != info.total_steps):
            return
        done = int(self.width * info.step / info.total_steps)
        bar = "#" * done + "." * (self.width - done)
        self.stream.write(
            f"\r[{bar}] epoch {info.epoch} step {info.step}/{info.total_steps} loss {info.loss:.3f} "
            f"{info.images_per_s:,.0f} img/s eta {info.eta_s:,.0f}s "
        )
        self.stream.flush()

    def on_epoch(self, info: EpochInfo) -> None:
        line = (
            f"epoch {info.epoch}/{info.epochs}: train loss {info.train_loss:.4f} acc {info.train_acc:.4f}  "
            f"val loss {info.val_loss:.4f} acc {info.val_acc:.4f}  {info.elapsed_s:.1f}s"
        )
        self.stream.write(f"\r{line}{' ' * 20}\n" if self.live else f"{line}\n")
        self.stream.flush()
