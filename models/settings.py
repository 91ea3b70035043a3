"""What a checkpoint needs besides its weights and tokenizer to reproduce its predictions: its layers and their
labels, the argument roles, how words are normalised and cut into windows, and how a word's pieces are pooled.

A run config (train/config.py) and a checkpoint's tagger.json (models/checkpoint.py) both become a TaggerSettings,
and building one checks every setting: code that is handed one trusts it.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields

from models.arguments import ARGUMENT_KEY, ENTITY_LAYER, NO_ROLE, TRIGGER_LAYER
from models.labels import TagError, split_tag
from models.modeling import WORD_POOLINGS
from models.text import NORMALISERS


class SettingsError(ValueError):
    """A setting no run could have trained with; the message names the setting and its value."""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class TaggerSettings:
    layers: dict[str, tuple[str, ...]]  # layer -> its IOB2 labels, in the order of its head's outputs
    roles: tuple[str, ...] = ()  # argument roles, in the order of the argument head's outputs; empty: no head
    normalisation: str  # per word, one of models/text.py NORMALISERS
    max_length: int  # pieces per window, specials included
    overlap: int  # pieces shared by consecutive windows of a long sentence
    context: int = 0  # pieces of the neighbouring text read (not tagged) on each side of a window
    word_pooling: str = "first"  # a word's logits: its first piece's | the mean of its pieces' (models/modeling.py)
    # the weight of each of the model's losses (its layers', and `arguments` with roles); 1 where none is given.
    # A weight for a layer the run does not have is dropped, so `layers.entities=null` works on a config that
    # weights entities.
    loss_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        layers, roles = self.layers, self.roles
        if not isinstance(layers, dict) or not layers:
            raise SettingsError(f"'layers' must map each layer to its labels, got {layers!r}")
        for layer, labels in layers.items():
            if not isinstance(labels, (list, tuple)) or not labels or len(set(labels)) != len(labels):
                raise SettingsError(f"layer {layer!r} needs a list of distinct labels, got {labels!r}")
            try:
                for label in labels:
                    split_tag(label)
            except (TagError, TypeError) as err:
                raise SettingsError(f"layer {layer!r}: {err}") from None
        if (
            not isinstance(roles, (list, tuple))
            or len(set(map(str, roles))) != len(roles)
            or NO_ROLE in roles
            or not all(isinstance(role, str) and role for role in roles)
        ):
            raise SettingsError(f"roles must be a list of distinct role names (not {NO_ROLE!r}), got {roles!r}")
        if roles and not {TRIGGER_LAYER, ENTITY_LAYER} <= set(layers):
            raise SettingsError(
                f"roles link {TRIGGER_LAYER} to {ENTITY_LAYER}, so both must be layers; the layers are {list(layers)}"
            )
        if self.normalisation not in NORMALISERS:
            raise SettingsError(f"normalisation must be one of {sorted(NORMALISERS)}, got {self.normalisation!r}")
        if not _whole(self.max_length) or self.max_length < 1:
            raise SettingsError(f"max_length must be a whole number of pieces > 0, got {self.max_length!r}")
        if not _whole(self.overlap) or self.overlap < 0:
            raise SettingsError(f"overlap must be a whole number of pieces >= 0, got {self.overlap!r}")
        # a window reads at most half the room its own words leave on each side, so more would never be read
        if not _whole(self.context) or not 0 <= self.context < self.max_length // 2:
            raise SettingsError(
                f"context must be a whole number of pieces from 0 to under half of max_length "
                f"({self.max_length}), got {self.context!r}"
            )
        if self.word_pooling not in WORD_POOLINGS:
            raise SettingsError(f"word_pooling must be one of {WORD_POOLINGS}, got {self.word_pooling!r}")
        weights = self.loss_weights
        if not isinstance(weights, dict) or not all(
            isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0
            for weight in weights.values()
        ):
            raise SettingsError(f"loss_weights must map layers (or {ARGUMENT_KEY!r}) to numbers >= 0, got {weights!r}")
        # copies, labels and roles as tuples: settings shared by a model, a Tagger and a checkpoint cannot change
        # through a list the caller still holds
        object.__setattr__(self, "layers", {layer: tuple(labels) for layer, labels in layers.items()})
        object.__setattr__(self, "roles", tuple(roles))
        losses = [*layers, ARGUMENT_KEY] if roles else list(layers)
        object.__setattr__(self, "loss_weights", {name: float(weights.get(name, 1.0)) for name in losses})

    @classmethod
    def from_dict(cls, values) -> TaggerSettings:
        """Settings from a JSON or YAML mapping of setting -> value, naming an unknown or missing setting."""
        if not isinstance(values, dict):
            raise SettingsError(f"settings must be a mapping of setting -> value, got {values!r}")
        known = [setting.name for setting in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]!r}; the settings are {known}")
        missing = [
            setting.name
            for setting in fields(cls)
            if setting.name not in values and setting.default is MISSING and setting.default_factory is MISSING
        ]
        if missing:
            raise SettingsError(f"setting {missing[0]!r} is missing")
        return cls(**values)

    def to_dict(self) -> dict:
        """The settings as JSON values (from_dict reads them back)."""
        return asdict(self)
