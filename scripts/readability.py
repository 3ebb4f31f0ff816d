"""How plainly each page reads, in the Expert view (today's app) and the Simple view (issue 24): every page is run
with Streamlit's AppTest (the Draw page on a test image, so that answers and maps show), its sentences are
collected (markdown, captions, notices, widgets' help) and measured with textstat.

    VITDEMO_DATA_DIR=../shared/data python scripts/readability.py [--pages draw,hood] [--json out.json]

Prints one row per page and view: sentences, Flesch reading ease (higher is easier; 60-70 is plain English) and
Flesch-Kincaid grade (a 15-year-old reads grade 9-10). Runs in a private VITDEMO_HOME; trains nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PAGES = ["draw", "present", "hood", "evaluate", "leaderboard", "train", "lab", "race", "classset", "read"]
KINDS = ("markdown", "caption", "info", "warning", "error", "success")
_MARKUP = re.compile(r"<[^>]+>|[*_`#]|:material/\w+:|\[([^\]]*)\]\([^)]*\)")


def plain(text: str) -> str:
    """Markdown and HTML reduced to the words a reader reads."""
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or " ", html.unescape(text)).split())


def page_sentences(page: str, expert: bool) -> list[str]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.session_state["view_expert"] = expert
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    if page == "draw":
        at.button_group(key="input_mode").set_value("test").run()
    found = [str(e.value) for kind in KINDS for e in at.get(kind)]
    found += [str(w.help) for kind in ("slider", "select_slider", "selectbox", "radio", "button_group", "metric", "toggle") for w in at.get(kind)
              if getattr(w, "help", None)]  # fmt: skip
    return [t for t in (plain(f) for f in found) if len(t.split()) >= 3]


def measure(sentences: list[str]) -> dict[str, float]:
    import textstat

    text = " ".join(s if s.endswith((".", "?", "!")) else s + "." for s in sentences)
    return {
        "sentences": len(sentences),
        "ease": round(textstat.flesch_reading_ease(text), 1),
        "grade": round(textstat.flesch_kincaid_grade(text), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated pages (app_pages/<name>.py)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("VITDEMO_THREADS", "1")
    os.environ["VITDEMO_HOME"] = tempfile.mkdtemp(prefix="vitdemo-readability-")
    from streamlit import config

    config.set_option("server.address", "127.0.0.1")  # as the tests: the teacher's view of a home server
    rows = []
    print(f"{'page':<12} {'view':<7} {'sentences':>9} {'ease':>6} {'grade':>6}")
    for page in args.pages.split(","):
        for expert in (True, False):
            row = {"page": page, "view": "expert" if expert else "simple", **measure(page_sentences(page, expert))}
            rows.append(row)
            print(f"{page:<12} {row['view']:<7} {row['sentences']:>9} {row['ease']:>6} {row['grade']:>6}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
