"""MobileNetV2 as a list of blocks: one per layer that becomes an op (or a fused op) in
LiteRT, each with its kind, shape and the arithmetic it does.

`describe(model)` reads a Keras 3 `keras.applications.MobileNetV2` (the only part here
that needs Keras); `attribute` matches the ops of a LiteRT profile to the blocks. All
but `describe` is plain Python, so the render and its test use it without TensorFlow.

A block is what the TFLite converter fuses into one op: a convolution with the
BatchNormalization after it (folded into its weights and bias) and its ReLU6 (a fused
activation), a stride-2 depthwise convolution with the ZeroPadding2D before it (XNNPACK
folds the PAD into the convolution's padding), a residual Add, the global average pool
(MEAN), the classifier (Dense + softmax: FULLY_CONNECTED + SOFTMAX). XNNPACK runs a
1x1 convolution as a fully connected GEMM.
"""

from __future__ import annotations

import dataclasses
import math

# Op kinds in network order; the labels are the rows of the per-kind table.
KINDS = {
    "stem": "stem conv 3x3 s2",
    "expand": "1x1 expand conv",
    "depthwise_s1": "3x3 depthwise s1",
    "depthwise_s2": "3x3 depthwise s2 (+ its PAD)",
    "project": "1x1 project conv",
    "add": "residual add",
    "final": "final 1x1 conv",
    "pool": "global average pool",
    "classifier": "classifier (dense + softmax)",
}
# The kinds that only the int8 file has (float input and output around an int8 graph).
IO_KINDS = {"quantize": "QUANTIZE (model input)", "dequantize": "DEQUANTIZE (model output)"}
POINTWISE = ("expand", "project", "final")
DEPTHWISE = ("depthwise_s1", "depthwise_s2")


@dataclasses.dataclass(frozen=True)
class Block:
    """One op (or fused op) of the network.

    Args:
        kind: a key of `KINDS`.
        in_shape: (H, W, C) of its input (an Add has two of them), or (C,) for the dense.
        out_shape: (H, W, C) of its output, or (classes,).
        kernel: the convolution's kernel size (1 for non-convolutions).
        stride: the convolution's stride (1 for non-convolutions).
        pad: ZeroPadding2D's ((top, bottom), (left, right)) before a 'valid'
            convolution, or None.
    """

    kind: str
    in_shape: tuple
    out_shape: tuple
    kernel: int = 1
    stride: int = 1
    pad: tuple | None = None

    @property
    def key(self) -> str:
        """A readable id of the shape, e.g. "expand 56x56x24->56x56x144"."""
        shape = "->".join("x".join(str(d) for d in s) for s in (self.in_shape, self.out_shape))
        return f"{self.kind} {shape}"

    @property
    def relu6(self) -> bool:
        """Whether a ReLU6 follows (fused): every convolution but the linear project."""
        return self.kind in ("stem", "expand", "depthwise_s1", "depthwise_s2", "final")

    def macs(self) -> int:
        """Multiply-accumulates (convolutions, dense), or element operations (add, pool)."""
        out = math.prod(self.out_shape)
        if self.kind in ("stem", "expand", "project", "final"):
            return out * self.kernel * self.kernel * self.in_shape[-1]
        if self.kind in DEPTHWISE:
            return out * self.kernel * self.kernel
        if self.kind == "classifier":
            return self.in_shape[-1] * self.out_shape[-1] + out  # + softmax's exps
        return math.prod(self.in_shape)  # add (one per output), pool (one per input)

    def weights(self) -> int:
        """Weight values (biases and the folded BatchNormalization left out)."""
        if self.kind in ("stem", "expand", "project", "final"):
            return self.kernel * self.kernel * self.in_shape[-1] * self.out_shape[-1]
        if self.kind in DEPTHWISE:
            return self.kernel * self.kernel * self.out_shape[-1]
        if self.kind == "classifier":
            return self.in_shape[-1] * self.out_shape[-1]
        return 0

    def activations(self) -> int:
        """Activation values read and written (an Add reads two inputs)."""
        inputs = math.prod(self.in_shape) * (2 if self.kind == "add" else 1)
        return inputs + math.prod(self.out_shape)


def describe(model) -> list[Block]:
    """The blocks of a Keras 3 `keras.applications.MobileNetV2`, in layer order."""
    import keras

    blocks, pad, pad_input = [], None, None
    for layer in model.layers:
        out = tuple(int(d) for d in layer.output.shape[1:])
        if isinstance(layer, keras.layers.ZeroPadding2D):
            pad = tuple(tuple(int(p) for p in side) for side in layer.padding)
            pad_input = tuple(int(d) for d in layer.input.shape[1:])
            continue
        if isinstance(layer, keras.layers.Add):
            shape = tuple(int(d) for d in layer.input[0].shape[1:])
            blocks.append(Block("add", shape, out))
            continue
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            blocks.append(Block("pool", tuple(int(d) for d in layer.input.shape[1:]), out))
            continue
        if isinstance(layer, keras.layers.Dense):
            blocks.append(Block("classifier", tuple(int(d) for d in layer.input.shape[1:]), out))
            continue
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        kernel, stride = int(layer.kernel_size[0]), int(layer.strides[0])
        shape = tuple(int(d) for d in layer.input.shape[1:])
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kind = f"depthwise_s{stride}"
        elif kernel == 3:
            kind = "stem"
        elif layer.name.endswith("project"):
            kind = "project"
        elif layer.name.endswith("expand"):
            kind = "expand"
        else:
            kind = "final"
        used_pad = pad if layer.padding == "valid" else None
        if used_pad is not None:
            shape = pad_input
        blocks.append(Block(kind, shape, out, kernel, stride, used_pad))
        pad = pad_input = None
    return blocks


# What XNNPACK (or the interpreter) calls the op each kind of block becomes.
_OP_CLASS = {
    "stem": "conv",
    "depthwise_s1": "dwconv",
    "depthwise_s2": "dwconv",
    "expand": "gemm",
    "project": "gemm",
    "final": "gemm",
    "add": "add",
    "pool": "mean",
    "classifier": "gemm",
}


def op_class(tag: str) -> str:
    """The class of a profiled op from its tag ("Convolution (NHWC, QC8) DWConv" ->
    "dwconv", "FULLY_CONNECTED" -> "gemm", ...); "other" when unknown."""
    low = tag.lower()
    for needle, name in (
        ("dwconv", "dwconv"),
        ("depthwise", "dwconv"),
        ("convert", "convert"),
        ("quantize", "convert"),  # QUANTIZE, DEQUANTIZE on the interpreter's kernels
        ("convolution", "conv"),
        ("conv_2d", "conv"),
        ("fully connected", "gemm"),
        ("fully_connected", "gemm"),
        ("add", "add"),
        ("mean", "mean"),
        ("reshape", "reshape"),
        ("softmax", "softmax"),
        ("pad", "pad"),
    ):
        if needle in low:
            return name
    return "other"


def attribute(blocks: list[Block], tags: list[str]) -> list[tuple[str, int | None]]:
    """(kind, index of its block in `blocks` or None) for each profiled op, in order.

    The ops run in the network's layer order, one per block, so they are matched to
    the blocks in turn by class: a Convert (QUANTIZE) before the first block is
    "quantize" and one after is "dequantize"; the Reshape and the Softmax of the
    classifier go to the classifier block, a PAD to the convolution after it; an op
    that does not match the next block's class is "other" (the matching then goes on
    with the same block).
    """
    out: list[tuple[str, int | None]] = []
    j = 0
    classifier = next((i for i, b in enumerate(blocks) if b.kind == "classifier"), None)
    for tag in tags:
        cls = op_class(tag)
        if cls == "convert":
            out.append(("quantize" if j == 0 else "dequantize", None))
        elif cls in ("reshape", "softmax") and classifier is not None:
            out.append(("classifier", classifier))
        elif cls == "pad" and j < len(blocks) and blocks[j].pad is not None:
            out.append((blocks[j].kind, j))  # a PAD XNNPACK did not fold into the conv
        elif j < len(blocks) and _OP_CLASS[blocks[j].kind] == cls:
            out.append((blocks[j].kind, j))
            j += 1
        else:
            out.append(("other", None))
    return out
