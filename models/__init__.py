"""Everything inference needs: labels, Arabic text handling, the model, checkpoints and the Tagger."""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers and editors
    from models.spans import Span
    from models.tagger import Doc, Tagger

__all__ = ["Doc", "Span", "Tagger"]


def __getattr__(name: str):
    # `from models import Tagger` loads torch; `python -m models --help` imports this package too, and must not
    if name in __all__:
        return getattr(importlib.import_module("models.tagger"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
