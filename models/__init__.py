"""Everything inference needs: labels, Arabic text handling, the model, checkpoints and the Tagger."""
from models.spans import Span
from models.tagger import Doc, Tagger

__all__ = ["Doc", "Span", "Tagger"]
