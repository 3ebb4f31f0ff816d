"""When two display names are the same name: the key a name is stored and compared under. Plain Python.

"Ana", "ANA", "Ana " and "Аna" (a Cyrillic А) all look like Ana on the projector, so they must be one name: a
student who takes a look-alike of a classmate's name could pass for them, and "Teacher" or "command line" could
pass for the teacher or the app itself. The key follows Unicode's recipe for confusable strings (UTS #39's
skeleton, much abridged): compatibility-normalise (NFKC: full-width letters, ligatures), map the letters of other
scripts that look like Latin ones to those, fold case, drop accents, then keep letters and digits only (so spaces,
dots and dashes do not make a new name). "Zoë" and "Zoe" are then one name too: in a class, add an initial.
"""

from __future__ import annotations

import unicodedata

# Letters that look like Latin letters in common fonts (from Unicode's confusables.txt: Cyrillic and Greek, upper
# and lower case, and a few Latin and digit pairs that sans-serif fonts draw alike). Mapped before case folding,
# as the skeleton is: Greek capital Eta looks like H, its small letter like n.
LOOKALIKES = str.maketrans(
    {
        # Cyrillic capitals and smalls
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
        "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "d", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Һ": "h",
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
        "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h",
        "ӏ": "l", "Ӏ": "l", "ё": "e", "ї": "i", "ь": "b",
        # Greek capitals and smalls
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
        "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "α": "a", "ο": "o", "ρ": "p", "υ": "u", "ν": "v", "ι": "i",
        "κ": "k", "χ": "x", "ε": "e", "τ": "t", "η": "n", "μ": "u", "ϲ": "c", "ϳ": "j",
        # Latin and digits drawn alike: capital I, small l and one; capital O and zero
        "I": "l", "1": "l", "|": "l", "0": "o", "O": "o",
    }
)  # fmt: skip
DIGRAPHS = (("rn", "m"), ("vv", "w"))  # pairs of letters that read as one at a glance


def name_key(name: str) -> str:
    """The key `name` is unique under: NFKC, look-alike letters mapped to Latin, case folded, accents dropped,
    letters and digits only. 'Аna K.' (Cyrillic А) -> 'anak'; '' for a name with no letter or digit."""
    text = unicodedata.normalize("NFKC", str(name)).translate(LOOKALIKES).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    text = "".join(ch for ch in text if ch.isalnum()).translate(LOOKALIKES)
    for pair, single in DIGRAPHS:
        text = text.replace(pair, single)
    return text


def reserved_keys(labels: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name_key(label) for label in labels)
