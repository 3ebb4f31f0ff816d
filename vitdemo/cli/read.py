"""`python -m vitdemo read IMAGE... [--json]`: read whole numbers with both readers, one line per image and
reader. A file that cannot be read gets one line on stderr (and, with --json, an object with an "error"); the
exit status is then 2, after every file is done, like `predict`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _readers(a: argparse.Namespace) -> dict[str, Any]:
    from vitdemo.checkpoints import load_checkpoint
    from vitdemo.cli.refs import resolve_model_ref
    from vitdemo.numbers.analyze import READERS, shipped_path
    from vitdemo.runs.store import Registry

    readers = {}
    for name in READERS:
        ref = getattr(a, name)
        if not ref:
            path = shipped_path(name)
        elif Path(ref).is_file():
            path = Path(ref)
        else:  # a run id: only then is the registry opened
            path = resolve_model_ref(ref, Registry(a.home))
        loaded = load_checkpoint(path)
        if loaded.kind != name:
            raise ValueError(f"--{name} holds a {loaded.kind} model, not a {name}")
        readers[name] = loaded
    return readers


def lines_for(file: str, readers: dict[str, Any], *, as_json: bool, beam: int) -> list[str]:
    """The output lines for one image file (one per reader). Raises for an unreadable file."""
    from vitdemo.numbers.analyze import read_image

    answer = read_image(Path(file).read_bytes(), readers, beam=beam, explain=False)
    lines = []
    for name in readers:
        reading = answer.readings.get(name)
        row: dict[str, Any] = {
            "file": file,
            "reader": name,
            "text": None if reading is None else reading.text,
            "confidence": None if reading is None else round(reading.confidence, 6),
        }
        if name == "detector":
            row["boxes"] = answer.image_boxes()
        elif reading is not None:
            row["alternatives"] = [[text, round(p, 6)] for text, p in reading.alternatives]
        row["message"] = answer.message
        if as_json:
            lines.append(json.dumps(row, allow_nan=False))
        elif reading is None:
            lines.append(f"{file}  {name}: no number ({answer.message})")
        else:
            lines.append(f"{file}  {name}: {reading.text or '(nothing)'}  {reading.confidence:.1%}")
    return lines


def cmd_read(a: argparse.Namespace) -> int:
    from vitdemo.cli.refs import answer_files

    readers = _readers(a)
    return answer_files(a.images, lambda file: lines_for(file, readers, as_json=a.json, beam=a.beam), as_json=a.json)


def evaluate_reader_cli(loaded: Any, a: argparse.Namespace) -> int:
    """`evaluate` on a reader: the fixed test numbers (t10k's digits, 250 of each length 1..8)."""
    from vitdemo.data import load_raw
    from vitdemo.numbers.evaluate import detector_as_classifier, evaluate_reader
    from vitdemo.numbers.splits import drawn_numbers, test_numbers
    from vitdemo.training.loop import resolve_device

    report = evaluate_reader(loaded.model, test_numbers(a.data_dir), resolve_device(a.device))
    drawn = evaluate_reader(loaded.model, drawn_numbers(), resolve_device(a.device)) if a.drawn else None
    single = None
    if loaded.kind == "detector":
        single = detector_as_classifier(loaded.model, load_raw("mnist", train=False, data_dir=a.data_dir))
    if a.json:
        drawn_acc = None if drawn is None else drawn.accuracy
        print(json.dumps({"checkpoint": str(loaded.path), **report.to_dict(), "single_digit": single,
                          "drawn_accuracy": drawn_acc}))  # fmt: skip
        return 0
    print(f"{loaded.path}  ({loaded.kind}, {loaded.num_params:,} parameters, {report.n} test numbers of 1-8 digits)")
    print(f"whole-number accuracy {report.accuracy:.2%}   character error rate {report.cer:.2%}")
    print("by length  " + "  ".join(f"{k}: {v:.1%}" for k, v in report.by_length.items()))
    if report.map50 is not None:
        print(f"mAP@0.5 {report.map50:.4f}   mAP@0.5:0.95 {report.map:.4f}")
    if single is not None:
        print(f"as a single-digit classifier on t10k: accuracy {single['accuracy']:.2%}  "
              f"macro F1 {single['macro_f1']:.4f}  loss {single['loss']:.4f}")  # fmt: skip
    if drawn is not None:
        print(f"drawn numbers (the stroke generator's held-out writers, 500): {drawn.accuracy:.2%}")
    print("commonest mistakes  " + ", ".join(f"{m} ({n})" for m, n in report.mistakes))
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("read", help="read whole numbers (1-8 digits) in image files with the captioner and detector")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--captioner", help="run id or checkpoint (default: the shipped one)")
    p.add_argument("--detector", help="run id or checkpoint (default: the shipped one)")
    p.add_argument("--beam", type=int, default=4, help="the captioner's beam width for its alternatives (0: none)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and reader")
    p.add_argument("--home", help="where runs and the registry live (default: $VITDEMO_HOME or ./runs)")
    p.set_defaults(func=cmd_read)
