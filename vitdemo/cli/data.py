"""`python -m vitdemo data`: fetch MNIST and Fashion-MNIST where there is internet, or (--check) say what is in
the data folder and exactly where the four *-ubyte files of each dataset go. A terminal's command: it prints the
server's folders, which a page never does (vitdemo.views.messages)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from vitdemo import paths
from vitdemo.data import DATASET_INFO, RAW_FILES, DataError, download, missing_files, raw_dir


def where_from(flag: str | None) -> str:
    """Which setting chose the data folder: the flag, the environment variable or the default."""
    if flag:
        return "from --data-dir"
    if os.environ.get(paths.ENV_DATA_DIR):
        return f"from ${paths.ENV_DATA_DIR}"
    return f"the default: --data-dir or ${paths.ENV_DATA_DIR} moves it"


def check_line(dataset: str, data_dir: str | None) -> tuple[bool, str]:
    """(ready, 'MNIST: ready in <folder>' or 'MNIST: not there. Put the four *-ubyte files (...) in <folder>/')."""
    name, folder, missing = DATASET_INFO[dataset][0], raw_dir(dataset, data_dir), missing_files(dataset, data_dir)
    if not missing:
        return True, f"{name}: ready in {folder}"
    what = f"the four *-ubyte files ({', '.join(RAW_FILES)})" if len(missing) == len(RAW_FILES) else "them"
    lacks = "not there" if len(missing) == len(RAW_FILES) else f"missing {', '.join(missing)}"
    return False, (
        f"{name}: {lacks}. Put {what} in {folder}/ (uncompressed), or run `python -m vitdemo data` where there "
        "is internet."
    )


def cmd_data(a: argparse.Namespace) -> int:
    """Check (--check) or fetch each dataset; 0 when every one is ready, 1 when one is still missing."""
    print(f"Data folder: {paths.data_root(a.data_dir)} ({where_from(a.data_dir)})")
    ready = True
    for dataset in a.dataset:
        if not a.check and missing_files(dataset, a.data_dir):
            print(f"{DATASET_INFO[dataset][0]}: downloading...", flush=True)
            try:
                download(dataset, a.data_dir)
            except DataError as exc:
                print(f"{DATASET_INFO[dataset][0]}: the download failed: {exc}")
                ready = False
                continue
        ok, line = check_line(dataset, a.data_dir)
        print(line)
        ready &= ok
    return 0 if ready else 1


def add_parsers(sub: Any) -> None:
    """The `data` verb."""
    p = sub.add_parser(
        "data",
        help="download MNIST and Fashion-MNIST, or check where their files go (--check)",
        description=__doc__,
    )
    p.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR or ~/.cache/vitdemo/data)")
    p.add_argument("--check", action="store_true", help="download nothing: say what is there and where files go")
    p.add_argument("--dataset", nargs="+", choices=list(DATASET_INFO), default=list(DATASET_INFO))
    p.set_defaults(func=cmd_data)
