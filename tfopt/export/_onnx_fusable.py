"""Exact rewrites of a QDQ graph into the patterns onnxruntime fuses into int8 kernels.

onnxruntime's CPU provider replaces `DequantizeLinear -> Conv -> QuantizeLinear`
(and MatMul, Gemm, Add...) by one QLinearConv (QGemm, QLinearAdd...) only when a
QuantizeLinear follows the op directly; a Relu or Clip in between is dropped
only when the QuantizeLinear's range already lies inside it (its ReluQuantFusion
and ClipQuantFusion). Two patterns of a QAT model miss that and leave the op in
float32 between a DequantizeLinear and a QuantizeLinear:

- a Concatenate whose inputs are quantized only at its output (the inputs share
  the output's grid, so the QAT model fake-quantizes once, after the concat):
  each input gets a QuantizeLinear -> DequantizeLinear pair with the concat
  output's scale and zero point;
- a Relu or Clip before a QuantizeLinear whose range goes below (or above) it,
  as when such a branch meets another one in a concat: a QuantizeLinear ->
  DequantizeLinear pair with the same parameters goes before the Relu/Clip.

Both are exact: quantization q(x) = clamp(round(x / s) + z) is monotone and
q(dq(q(x))) = q(x), so q(concat(a, b)) = concat(q(a), q(b)) elementwise and
q(relu(x)) = max(q(x), q(0)) = q(relu(dq(q(x)))) (likewise for clip).
"""

from __future__ import annotations

import numpy as np

_WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _constant(name, inits, consts, numpy_helper):
    if name in inits:
        return numpy_helper.to_array(inits[name])
    if name in consts:
        attr = next(a for a in consts[name].attribute if a.name == "value")
        return numpy_helper.to_array(attr.t)
    return None


class _Graph:
    """Producers, consumers and constants of an ONNX graph, for the rewrites below."""

    def __init__(self, graph, numpy_helper, helper, count=0):
        self.graph, self.numpy_helper, self.helper = graph, numpy_helper, helper
        self.inits = {i.name: i for i in graph.initializer}
        self.consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
        self.producers = {out: n for n in graph.node for out in n.output}
        self.consumers = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}
        self.inserted = []  # (before node, [new nodes])
        self.count = count  # pairs inserted so far (names stay unique across passes)

    def value(self, name):
        return _constant(name, self.inits, self.consts, self.numpy_helper)

    def only_quantize_consumer(self, name):
        """The QuantizeLinear that alone reads `name` (with constant scale and zero
        point), or None."""
        users = self.consumers.get(name, [])
        if name in self.outputs or len(users) != 1 or users[0].op_type != "QuantizeLinear":
            return None
        q = users[0]
        if len(q.input) < 3 or self.value(q.input[1]) is None or self.value(q.input[2]) is None:
            return None
        return q

    def insert_pair(self, node, index, q):
        """Puts QuantizeLinear -> DequantizeLinear (the parameters of `q`) on input
        `index` of `node`."""
        self.count += 1
        tag = f"tfopt_fusable_{self.count}"
        scale, zero = self.value(q.input[1]), self.value(q.input[2])
        s_name, z_name = f"{tag}_scale", f"{tag}_zero_point"
        self.graph.initializer.append(self.numpy_helper.from_array(scale, s_name))
        self.graph.initializer.append(self.numpy_helper.from_array(zero, z_name))
        attrs = {a.name: self.helper.get_attribute_value(a) for a in q.attribute}
        source = node.input[index]
        quantized, restored = f"{tag}_quantized", f"{tag}_dequantized"
        new = [
            self.helper.make_node(
                "QuantizeLinear", [source, s_name, z_name], [quantized], f"{tag}_q", **attrs
            ),
            self.helper.make_node(
                "DequantizeLinear", [quantized, s_name, z_name], [restored], f"{tag}_dq", **attrs
            ),
        ]
        node.input[index] = restored
        self.inserted.append((node, new))

    def commit(self):
        """Places the new nodes right before the node they feed (topological order)."""
        before = {}
        for node, new in self.inserted:
            before.setdefault(id(node), []).extend(new)
        nodes = []
        for node in self.graph.node:
            nodes.extend(before.get(id(node), []))
            nodes.append(node)
        self.graph.ClearField("node")
        self.graph.node.extend(nodes)


def _quantized_range(zero, dtype):
    info = np.iinfo(dtype)
    return info.min - zero, info.max - zero  # in steps of the scale


def _activation_kept(g, node, q) -> bool:
    """True when onnxruntime cannot drop this Relu/Clip before `q` (its range goes past
    the activation's), so the op before it would stay float."""
    scale = np.asarray(g.value(q.input[1]), np.float64)
    zero = np.asarray(g.value(q.input[2]))
    if scale.size != 1:
        return False  # per-axis activations: not a pattern here
    low, high = _quantized_range(int(zero.reshape(())), zero.dtype)
    low, high = low * float(scale), high * float(scale)
    if node.op_type == "Relu":
        return low < 0.0
    lo = g.value(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    hi = g.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if (len(node.input) > 1 and node.input[1] and lo is None) or (
        len(node.input) > 2 and node.input[2] and hi is None
    ):
        return False  # clip bounds computed at run time
    tol = float(scale) / 2
    return (lo is not None and low < float(lo) - tol) or (
        hi is not None and high > float(hi) + tol
    )


def make_fusable(graph, numpy_helper, helper) -> int:
    """Applies the two rewrites in place; returns how many Q/DQ pairs were inserted."""
    g = _Graph(graph, numpy_helper, helper)
    for node in list(graph.node):
        if node.op_type != "Concat":
            continue
        q = g.only_quantize_consumer(node.output[0])
        if q is None:
            continue
        for index, name in enumerate(node.input):
            producer = g.producers.get(name)
            if producer is None or producer.op_type == "DequantizeLinear":
                continue  # a graph input, an initializer, or already quantized
            g.insert_pair(node, index, q)
    g.commit()
    # The Relu/Clip rule sees the pairs just inserted before concat inputs.
    g = _Graph(graph, numpy_helper, helper, g.count)
    for node in list(graph.node):
        if node.op_type not in ("Relu", "Clip"):
            continue
        q = g.only_quantize_consumer(node.output[0])
        producer = g.producers.get(node.input[0])
        if q is None or producer is None or producer.op_type not in _WEIGHTED:
            continue
        if len(g.consumers.get(node.input[0], [])) != 1 or not _activation_kept(g, node, q):
            continue
        g.insert_pair(node, 0, q)
    g.commit()
    return g.count
