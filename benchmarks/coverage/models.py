"""The models of the coverage table, each built with `keras` (Keras 3) or `tf_keras`.

keras.applications (`weights=None`, 32x32x3 input, the smallest each accepts, 10
classes, logits: `classifier_activation=None`), then three small models written
here with layers both Keras versions have: a ViT-style image classifier, a text
classifier (Embedding with a padding mask, one Transformer block) and an LSTM
sequence tagger.
"""

from __future__ import annotations

import dataclasses

IMAGE_SIZE = 32  # keras.applications' smallest accepted input (min_size=32)
CLASSES = 10

# ViT-style classifier on 16x16 digits: 4x4 patches -> 16 tokens of width 32.
VIT_IMAGE_SIZE = 16
VIT_PATCH = 4
VIT_WIDTH = 32
VIT_HEADS = 2
VIT_BLOCKS = 2

# Text classifier and tagger: token ids, 0 is padding (text only).
TEXT_VOCAB = 64
TEXT_LENGTH = 20
TEXT_CLASSES = 3
TAGGER_VOCAB = 20
TAGGER_LENGTH = 16
TAGGER_TAGS = 3


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the table.

    Attributes:
        name: as the table shows it.
        kind: "application", "vit", "text" or "tagger" (which data and budget).
        constructor: the keras.applications function (applications only).
        options: extra keyword arguments of `constructor` (e.g. alpha).
        input_scale: what the digits images are multiplied by: 255 for the
            applications whose first layers rescale 0..255 inputs themselves.
    """

    name: str
    kind: str
    constructor: str = ""
    options: tuple = ()
    input_scale: float = 1.0

    def build(self, keras_module):
        """The model, built with `keras_module` (`keras` or `tf_keras`), seeded by the caller."""
        if self.kind == "application":
            return _application(keras_module, self)
        return _BUILDERS[self.kind](keras_module)

    @property
    def input_note(self) -> str:
        """The input as the table shows it, e.g. "32x32x3 (0..255)"."""
        if self.kind == "application":
            scale = "0..255" if self.input_scale == 255.0 else "0..1"
            return f"{IMAGE_SIZE}x{IMAGE_SIZE}x3 ({scale})"
        if self.kind == "vit":
            return f"{VIT_IMAGE_SIZE}x{VIT_IMAGE_SIZE}x1 (0..1)"
        if self.kind == "text":
            return f"{TEXT_LENGTH} token ids, padded"
        return f"{TAGGER_LENGTH} token ids"


def _app(name, constructor=None, scale=1.0, **options):
    return ModelSpec(name, "application", constructor or name, tuple(options.items()), scale)


MODELS = (
    _app("MobileNet (alpha 0.25)", "MobileNet", alpha=0.25),
    _app("MobileNetV2 (alpha 0.35)", "MobileNetV2", alpha=0.35),
    _app("MobileNetV3Small", scale=255.0),
    _app("MobileNetV3Large", scale=255.0),
    _app("EfficientNetB0", scale=255.0),
    _app("ResNet50"),
    _app("ConvNeXtTiny", scale=255.0),
    _app("DenseNet121"),
    _app("NASNetMobile"),
    ModelSpec("ViT-style classifier", "vit"),
    ModelSpec("Text classifier (Transformer block)", "text"),
    ModelSpec("LSTM sequence tagger", "tagger"),
)
QUICK_MODELS = (
    "MobileNet (alpha 0.25)",
    "ViT-style classifier",
    "Text classifier (Transformer block)",
    "LSTM sequence tagger",
)


def models(quick: bool) -> tuple[ModelSpec, ...]:
    """The models measured: all of `MODELS`, or `QUICK_MODELS` with --quick."""
    return tuple(m for m in MODELS if not quick or m.name in QUICK_MODELS)


def by_name(name: str) -> ModelSpec:
    """The spec called `name`.

    Raises:
        ValueError: no model has that name (the message lists them).
    """
    for spec in MODELS:
        if spec.name == name:
            return spec
    names = ", ".join(repr(m.name) for m in MODELS)
    raise ValueError(f"Argument `name`: no model {name!r}. Models: {names}.")


def _application(keras_module, spec):
    constructor = getattr(keras_module.applications, spec.constructor)
    return constructor(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        weights=None,
        classes=CLASSES,
        classifier_activation=None,
        **dict(spec.options),
    )


def _vit(keras_module):
    """Patch Conv2D, tokens, pre-norm Transformer blocks (MHA, GELU MLP), mean pooling."""
    layers = keras_module.layers
    tokens = (VIT_IMAGE_SIZE // VIT_PATCH) ** 2
    inp = layers.Input((VIT_IMAGE_SIZE, VIT_IMAGE_SIZE, 1), name="image")
    x = layers.Conv2D(VIT_WIDTH, VIT_PATCH, strides=VIT_PATCH, name="patches")(inp)
    x = layers.Reshape((tokens, VIT_WIDTH), name="tokens")(x)
    for i in range(VIT_BLOCKS):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln1")(x)
        h = layers.MultiHeadAttention(
            VIT_HEADS, VIT_WIDTH // VIT_HEADS, name=f"block{i}_attention"
        )(h, h)
        x = layers.Add(name=f"block{i}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_ln2")(x)
        h = layers.Dense(2 * VIT_WIDTH, activation="gelu", name=f"block{i}_mlp1")(h)
        h = layers.Dense(VIT_WIDTH, name=f"block{i}_mlp2")(h)
        x = layers.Add(name=f"block{i}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    out = layers.Dense(CLASSES, name="logits")(x)
    return keras_module.Model(inp, out, name="vit_small")


def _text(keras_module):
    """Embedding (mask_zero), one post-norm Transformer block, masked mean pooling."""
    layers = keras_module.layers
    width = 32
    inp = layers.Input((TEXT_LENGTH,), dtype="int32", name="tokens")
    x = layers.Embedding(TEXT_VOCAB, width, mask_zero=True, name="embedding")(inp)
    h = layers.MultiHeadAttention(2, width // 2, name="attention")(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name="ln1")(layers.Add(name="add1")([x, h]))
    h = layers.Dense(2 * width, activation="gelu", name="ffn1")(x)
    h = layers.Dense(width, name="ffn2")(h)
    x = layers.LayerNormalization(epsilon=1e-6, name="ln2")(layers.Add(name="add2")([x, h]))
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    out = layers.Dense(TEXT_CLASSES, name="logits")(x)
    return keras_module.Model(inp, out, name="text_transformer")


def _tagger(keras_module):
    """Embedding, LSTM over the sequence, a Dense tag classifier on every step (rank 3)."""
    layers = keras_module.layers
    inp = layers.Input((TAGGER_LENGTH,), dtype="int32", name="tokens")
    x = layers.Embedding(TAGGER_VOCAB, 16, name="embedding")(inp)
    x = layers.LSTM(32, return_sequences=True, name="lstm")(x)
    out = layers.Dense(TAGGER_TAGS, name="tags")(x)
    return keras_module.Model(inp, out, name="lstm_tagger")


_BUILDERS = {"vit": _vit, "text": _text, "tagger": _tagger}
