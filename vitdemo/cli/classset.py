"""`python -m vitdemo classset ...`: the class's own drawings from a terminal.

classset list               every drawing: id, label, who, when, what each model answered
classset export OUT.zip     the set in MNIST's layout (IDX files, PNGs, a CSV)
classset score              every finished run and shipped checkpoint scored on the set, best first
classset freeze             a snapshot of the set for a training run's extra_data (prints its path)
classset delete ID          remove one drawing (a terminal on the server is the teacher)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: building the parser stays as light as the rest of the CLI's
    from vitdemo.classset.store import ClassSet, Submission

REPEAT_HELP = "times each drawing is added to the training images per epoch (default 20, at most 1000)"


def _store(a: argparse.Namespace) -> ClassSet:
    from vitdemo.classset.store import ClassSet

    return ClassSet(a.home)


def _line(sub: Submission) -> str:
    when = dt.datetime.fromtimestamp(sub.created_at).strftime("%Y-%m-%d %H:%M")
    said = "  ".join(
        f"{a.kind} {a.label} ({a.prob:.0%})" + (" fooled" if a.label != sub.label else "") for a in sub.answers
    )
    return f"#{sub.id:<5} {sub.label}  {when}  {sub.who[:20]:<20}  {said}"


def _as_dict(sub: Submission) -> dict[str, Any]:
    d = {k: v for k, v in sub.__dict__.items() if k != "answers"}
    d["answers"] = [a.__dict__ for a in sub.answers]
    return d


def cmd_list(a: argparse.Namespace) -> int:
    subs = _store(a).list(a.dataset)
    if a.json:
        print(json.dumps([_as_dict(s) for s in subs]))
        return 0
    if not subs:
        print(f"the class set has no {a.dataset} drawings yet (submit some on the Draw page)")
        return 0
    for sub in subs:
        print(_line(sub))
    print(f"{len(subs)} drawings", file=sys.stderr)
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from vitdemo.classset.export import write_export

    found = write_export(_store(a), a.out, a.dataset)
    skipped = f" ({found.skipped} left out: their files could not be read)" if found.skipped else ""
    print(f"wrote {a.out}: {found.count} drawings{skipped}")
    return 0


def cmd_score(a: argparse.Namespace) -> int:
    from vitdemo.classset.scores import score_table
    from vitdemo.runs.store import Registry
    from vitdemo.training.loop import resolve_device

    device = resolve_device(a.device).type
    rows = score_table(_store(a), Registry(a.home), a.dataset, shipped_dir=a.checkpoints, device=device)
    if a.json:
        out = [
            {"name": r.candidate.name, "kind": r.candidate.kind, "run_id": r.candidate.run_id,
             "shipped": r.candidate.shipped, "checkpoint": str(r.candidate.checkpoint), "n": r.n,
             "correct": r.correct, "accuracy": r.accuracy, "test_acc": r.candidate.test_acc, "problem": r.problem}
            for r in rows
        ]  # fmt: skip
        print(json.dumps(out))
        return 0
    if not rows:
        print(f"no finished {a.dataset} run or shipped checkpoint to score")
        return 0
    for r in rows:
        ref = f"#{r.candidate.run_id}" if r.candidate.run_id is not None else "shipped"
        acc = f"{r.accuracy:.2%}" if r.accuracy is not None else (r.problem or "no drawings")
        test = f"{r.candidate.test_acc:.2%}" if r.candidate.test_acc is not None else "-"
        print(f"{ref:>8}  {r.candidate.kind:<8} {r.candidate.name[:40]:<40}  class set {acc:>8} of {r.n}  test {test}")
    return 0


def cmd_freeze(a: argparse.Namespace) -> int:
    from vitdemo.classset.data import DEFAULT_REPEAT, freeze

    path = freeze(_store(a), a.dataset, DEFAULT_REPEAT if a.repeat is None else a.repeat)
    print(path)
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    from vitdemo.classset.store import delete
    from vitdemo.runs.people import CLI

    delete(_store(a), a.id, CLI)
    print(f"deleted drawing #{a.id}")
    return 0


def add_parsers(sub: Any) -> None:
    """The `classset` verb and its actions."""
    p = sub.add_parser("classset", help="the class's own drawings: list, export as MNIST files, score every run")
    actions = p.add_subparsers(dest="action", required=True)

    def action(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        q = actions.add_parser(name, help=help)
        q.add_argument("--home", help="where runs and the class set live (default: $VITDEMO_HOME or ./runs)")
        q.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
        q.set_defaults(func=func)
        return q

    q = action("list", "every drawing, newest first", cmd_list)
    q.add_argument("--json", action="store_true")
    q = action("export", "a zip in MNIST's layout: IDX images and labels, the PNGs and a CSV", cmd_export)
    q.add_argument("out", metavar="OUT.zip")
    q = action("score", "every finished run and shipped checkpoint on the class set, best first", cmd_score)
    q.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    q.add_argument("--checkpoints", help="the shipped checkpoints (default: $VITDEMO_CHECKPOINTS or checkpoints/)")
    q.add_argument("--json", action="store_true")
    q = action("freeze", "snapshot the set for a run's extra_data; prints the file", cmd_freeze)
    q.add_argument("--repeat", type=int, help=REPEAT_HELP)
    q = action("delete", "remove one drawing and its files", cmd_delete)
    q.add_argument("id", type=int, metavar="ID")
