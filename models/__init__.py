"""Everything inference needs: labels, Arabic text handling, the model, checkpoints and the Tagger."""
from models.tagger import Doc, Span, Tagger

__all__ = ["Doc", "Span", "Tagger"]
