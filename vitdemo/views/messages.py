"""Messages for a browser: a server's folders stay on the server.

Errors from checkpoints, datasets and the file system name whole paths, which is right in a terminal and wrong
on a projector or a public page. `hide_folders` keeps each file's name and drops the folders in front of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vitdemo.data import DATA_COMMAND, DATASET_INFO, MissingData, missing_error, missing_files
from vitdemo.paths import ENV_DATA_DIR

# An absolute path ("/srv/app/runs/", "~/data/", "./x/", "../x/"): every folder up to the file's name. Not a
# slash inside a word ("T-shirt/top", "1/2") nor one after a colon (a URL's "//").
_FOLDERS = re.compile(r"(?<![\w.~/:-])(?:~|\.{1,2})?/(?:[^\s/:;,'\"()\[\]]+/)*")


def hide_folders(text: str, *paths: str | os.PathLike) -> str:
    """`text` with each of `paths` (any form, relative ones too) and every absolute path cut to its file name."""
    for path in sorted({str(p) for p in paths if str(p) not in ("", ".")}, key=len, reverse=True):
        text = text.replace(path, Path(path).name)
    return _FOLDERS.sub("", text)


def os_error_text(exc: OSError) -> str:
    """'Permission denied: registry.sqlite' for an OSError, without the errno and without the folders."""
    reason = exc.strerror or str(exc)
    name = Path(os.fsdecode(exc.filename)).name if exc.filename else ""
    return hide_folders(f"{reason}: {name}" if name else reason)


def data_missing_text(exc: MissingData) -> str:
    """For the teacher, on a page anyone may see: which dataset is missing, where its files go inside the data
    folder (never the server's own path) and the command that fetches or finds them. Markdown."""
    files = ", ".join(f"`{name}`" for name in exc.missing)
    return (
        f"**{exc.folder} is not on this server yet**, so this page cannot use it. For the teacher: run "
        f"`{DATA_COMMAND}` on the server while it has internet, or copy the missing *-ubyte files ({files}) into "
        f"`{exc.folder}/raw/` inside the data folder (the one `${ENV_DATA_DIR}` names); "
        f"`{DATA_COMMAND} --check` prints where that folder is and what is in it."
    )


def data_error_text(exc: BaseException) -> str:
    """Any dataset error for a page: data_missing_text for missing files, else the message without folders."""
    return data_missing_text(exc) if isinstance(exc, MissingData) else hide_folders(str(exc))


def dataset_missing(config: object, data_dir: str | os.PathLike | None = None) -> str | None:
    """data_missing_text for a run whose dataset's files are not in the data folder; None when they are there (or
    the run names no dataset we know). Looks at file names only: cheap enough for every rerun of the Train page."""
    dataset = getattr(config, "dataset", None)
    if dataset not in DATASET_INFO or not missing_files(dataset, data_dir):
        return None
    return data_missing_text(missing_error(dataset, data_dir))
