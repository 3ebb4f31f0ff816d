"""The class set as a zip in MNIST's layout, for any MNIST reader (torchvision's, a notebook's, the seed
notebook's):

    class-images-idx3-ubyte.gz   IDX images (N, 28, 28) uint8, white ink on black: what the models saw
    class-labels-idx1-ubyte.gz   IDX labels (N,) uint8
    drawings/<id>-<label>.png    each drawing as submitted
    inputs/<id>-<label>.png      each 28x28 model input (the same pixels as in the IDX file)
    class-set.csv                id, label, who, when, and what each model answered at submit time
    README.txt                   this layout

Rows are oldest first, in the same order in the IDX files and the CSV. CSV text cells are escaped against
spreadsheet formulas (`vitdemo.views.units.csv_cell`). No torch here.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitdemo import families
from vitdemo.classset.store import ClassSet, Submission, png_bytes
from vitdemo.data import IDX_UBYTE  # the IDX type code of unsigned bytes; vitdemo.data reads such files

IMAGES_NAME = "class-images-idx3-ubyte.gz"
LABELS_NAME = "class-labels-idx1-ubyte.gz"
CSV_NAME = "class-set.csv"
README = """The class set: handwritten digits drawn by a class, with the labels their authors gave them.

{images} and {labels} are in MNIST's IDX format (gzip):
28x28 uint8 images, white ink (255) on a black background (0), exactly the images the models saw before
normalisation; labels 0-9. They read with any MNIST loader, for example
torchvision.datasets.mnist.read_image_file / read_label_file after gunzip.
drawings/ holds each drawing as it was submitted, inputs/ the same 28x28 images as PNG files.
{csv} lists every drawing: its id, label, who drew it, when, and what each model answered then.
"""


@dataclass(frozen=True)
class Exported:
    data: bytes  # the zip file
    count: int  # drawings in it
    skipped: int  # submissions left out because a file could not be read


SIDES = ("vit", "cnn")  # the two answers every drawing gets, first in the table


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte array in IDX format: 0, 0, the type code, the number of dimensions, each dimension as a
    big-endian int32, then the bytes in C order (MNIST's own files are written this way)."""
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"IDX unsigned bytes need a uint8 array, got {a.dtype}")
    header = bytes([0, 0, IDX_UBYTE, a.ndim]) + np.asarray(a.shape, dtype=">i4").tobytes()
    return header + a.tobytes()


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def csv_header(kinds: Sequence[str]) -> list[str]:
    head = ["id", "label", "dataset", "who", "when", "page", "drawing", "input"]
    for kind in kinds:
        name = families.get(kind).name if families.is_kind(kind) else kind
        head += [f"{name} model", f"{name} prediction", f"{name} probability", f"fooled {name}"]
    return head


def csv_row(sub: Submission, kinds: Sequence[str], drawing: str, input_name: str) -> list[object]:
    from vitdemo.units import csv_cell

    row: list[object] = [sub.id, sub.label, sub.dataset, sub.who, _when(sub.created_at), sub.page, drawing, input_name]
    for kind in kinds:
        a = sub.answer(kind)
        row += ["", "", "", ""] if a is None else [a.model, a.label, f"{a.prob:.4f}", int(a.label != sub.label)]
    return [csv_cell(v) for v in row]


def csv_bytes(rows: list[list[object]], kinds: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_header(kinds))
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _kinds(subs: Sequence[Submission]) -> list[str]:
    """The model kinds that answered, ViT and CNN first."""
    seen = {a.kind for s in subs for a in s.answers}
    return [k for k in SIDES if k in seen] + sorted(seen - set(SIDES))


def export_zip(store: ClassSet, dataset: str = "mnist") -> Exported:
    """The class set's `dataset` drawings as a zip (see the module's docstring), built in memory."""
    subs = sorted(store.list(dataset), key=lambda s: s.id)  # oldest first
    kinds = _kinds(subs)
    images, labels, rows, skipped = [], [], [], 0
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for sub in subs:
            try:
                image, drawing = store.input_image(sub), store.drawing_bytes(sub)
            except (OSError, ValueError):  # a file removed by hand: leave the drawing out, keep the rest
                skipped += 1
                continue
            name = f"{sub.id:05d}-{sub.label}.png"
            zf.writestr(f"drawings/{name}", drawing, compress_type=zipfile.ZIP_STORED)  # PNG is compressed
            zf.writestr(f"inputs/{name}", png_bytes(image), compress_type=zipfile.ZIP_STORED)
            images.append(image)
            labels.append(sub.label)
            rows.append(csv_row(sub, kinds, f"drawings/{name}", f"inputs/{name}"))
        stacked = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
        zf.writestr(IMAGES_NAME, gzip.compress(idx_bytes(stacked), mtime=0), compress_type=zipfile.ZIP_STORED)
        zf.writestr(LABELS_NAME, gzip.compress(idx_bytes(np.asarray(labels, np.uint8)), mtime=0))
        zf.writestr(CSV_NAME, csv_bytes(rows, kinds))
        zf.writestr("README.txt", README.format(images=IMAGES_NAME, labels=LABELS_NAME, csv=CSV_NAME))
    return Exported(buf.getvalue(), len(images), skipped)


def write_export(store: ClassSet, path: str | os.PathLike, dataset: str = "mnist") -> Exported:
    """export_zip into the file `path`, written under a temporary name and renamed (never half a zip)."""
    found = export_zip(store, dataset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(found.data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return found
