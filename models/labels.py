"""Label sets and BIO handling: named type sets, IOB1/IOB2 repair, tag validation, tags <-> spans."""

from __future__ import annotations

import re

from models.errors import UserError

OUTSIDE = "O"
# CoNLL files: CoNLL 2003's document boundary line, and the comment that names the columns (token, then one
# tag column per layer); `python -m models --format conll` writes both, the corpus reader skips them
DOCUMENT_START = "-DOCSTART-"
COLUMNS_HEADER = "# columns:"
_TAG = re.compile(r"^([BI])-(\S+)$")

# Type sets a run config may name instead of listing the types (`events: ace2005`); the order is the label order.
TYPE_SETS: dict[str, tuple[str, ...]] = {
    # ANERcorp's entity types
    "anercorp": ("PERS", "LOC", "ORG", "MISC"),
    # the 33 ACE 2005 event subtypes, ACE's hyphens written `_` (anercorp-events/GUIDELINES.md in the data)
    "ace2005": (
        "Conflict.Attack",
        "Conflict.Demonstrate",
        "Movement.Transport",
        "Contact.Meet",
        "Contact.Phone_Write",
        "Life.Be_Born",
        "Life.Marry",
        "Life.Divorce",
        "Life.Injure",
        "Life.Die",
        "Personnel.Start_Position",
        "Personnel.End_Position",
        "Personnel.Nominate",
        "Personnel.Elect",
        "Transaction.Transfer_Ownership",
        "Transaction.Transfer_Money",
        "Business.Start_Org",
        "Business.Merge_Org",
        "Business.Declare_Bankruptcy",
        "Business.End_Org",
        "Justice.Arrest_Jail",
        "Justice.Release_Parole",
        "Justice.Trial_Hearing",
        "Justice.Charge_Indict",
        "Justice.Sue",
        "Justice.Convict",
        "Justice.Sentence",
        "Justice.Fine",
        "Justice.Execute",
        "Justice.Extradite",
        "Justice.Acquit",
        "Justice.Appeal",
        "Justice.Pardon",
    ),
}


class TagError(UserError, ValueError):
    """A tag that is neither `O` nor `B-TYPE` / `I-TYPE`."""


def split_tag(tag: str) -> tuple[str, str | None]:
    """`B-PERS` -> ("B", "PERS"); `O` -> ("O", None). Raises TagError for other shapes."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    match = _TAG.match(tag)
    if match is None:
        raise TagError(f"tag {tag!r} is not O, B-TYPE or I-TYPE")
    return match.group(1), match.group(2)


def to_iob2(tags: list[str]) -> tuple[list[str], int]:
    """Normalise IOB1 or IOB2 to IOB2.

    An `I-X` that starts a chunk (after `O`, at the start, or after another type) becomes `B-X`.
    Returns the new tags and how many were repaired, so callers can report it.
    """
    fixed: list[str] = []
    repaired = 0
    previous_type: str | None = None
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and kind != previous_type:
            tag = f"B-{kind}"
            repaired += 1
        fixed.append(tag)
        previous_type = kind
    return fixed, repaired


def bio_labels(types: list[str]) -> list[str]:
    """The ordered label list of a layer: `O`, then `B-`/`I-` for each type in the order given."""
    if len(set(types)) != len(types):
        raise ValueError(f"duplicate entity types in {types}")
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]


def types_of(labels: list[str]) -> list[str]:
    """Inverse of bio_labels: the types in order of first appearance."""
    seen: dict[str, None] = {}
    for label in labels:
        _, kind = split_tag(label)
        if kind is not None:
            seen.setdefault(kind, None)
    return list(seen)


def chunks(tags: list[str]) -> list[tuple[int, int, str]]:
    """IOB2 tags -> (first word, end word exclusive, type). A stray `I-X` starts a chunk (seqeval default mode)."""
    found: list[tuple[int, int, str]] = []
    start, current = -1, None
    for index, tag in enumerate(tags + [OUTSIDE]):
        prefix, kind = split_tag(tag)
        continues = prefix == "I" and kind == current
        if current is not None and not continues:
            found.append((start, index, current))
            current = None
        if prefix in ("B", "I") and not continues:
            start, current = index, kind
    return found
