"""Messages for a browser: a server's folders stay on the server.

Errors from checkpoints, datasets and the file system name whole paths, which is right in a terminal and wrong
on a projector or a public page. `hide_folders` keeps each file's name and drops the folders in front of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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
