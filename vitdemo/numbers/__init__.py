"""Reading a whole number: synthetic number images made from real MNIST digits (`synth`), their fixed splits
(`splits`), and the two readers' shared pieces (decoding, metrics, training). Torch is imported by the modules
that need it; importing this package imports nothing heavy."""

from __future__ import annotations

CANVAS_H = 32  # a number's canvas, in pixels: tall enough for one MNIST digit (20 px of ink) and its baseline
CANVAS_W = 160  # wide enough for 8 digits side by side at MNIST's size (about 14 px each plus gaps)
MAX_DIGITS = 8  # the longest number a reader is taught (and the slots of a label)
DIGITS = "0123456789"
