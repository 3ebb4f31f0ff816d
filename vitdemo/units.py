"""Figures as people read them: durations, byte sizes, and a CSV cell a spreadsheet will not run as a formula.

Pure Python (no numpy, pandas or torch), so the queue's messages, the class-set export and the pages share them.
"""

from __future__ import annotations

import math
from typing import Any

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with one of these


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
    return) gets a leading single quote; everything else is left as it is."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return value


def format_duration(seconds: float | None) -> str:
    """3725 -> '1 h 02 min', 75 -> '1 min 15 s', 4.2 -> '4.2 s', 4e6 -> '46 days', None -> '-'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s / 86400:,.0f} days"


def rough_duration(seconds: float) -> str:
    """A time estimate in one short figure: '45 s', '33 min', '2.5 h', '46 days'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def format_minutes(minutes: float) -> str:
    """12.5 -> '12.5 minutes', 0.4 -> '24 seconds', 3000 -> '2.1 days'."""
    if minutes < 1:
        return f"{minutes * 60:.0f} seconds"
    if minutes < 120:
        return f"{minutes:.3g} minutes"
    if minutes < 48 * 60:
        return f"{minutes / 60:.3g} hours"
    return f"{minutes / 1440:.3g} days"


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024, one decimal below 100)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
