"""Rebuilds a functional graph with fake quantization: BN folding, ReLU fusing, wrappers."""

from __future__ import annotations

import warnings

import keras

from tfopt._keras import clone_layer, is_graph_model, is_operation_node
from tfopt.quantization import _attention, _batchnorm, registry, tflite_scheme
from tfopt.quantization.annotate import QuantizeAnnotate
from tfopt.quantization.config import QuantizationConfig
from tfopt.quantization.float_boundary import FloatBoundary
from tfopt.quantization.quantize_config import LayerQuantizeConfig
from tfopt.quantization.quantize_wrapper import QuantizeLayer, QuantizeWrapper
from tfopt.quantization.shared_quantize import SharedQuantize

# The kinds an operation node (an `ops` call, no weights) can be registered with.
_OPERATION_KINDS = ("output", "activation", "passthrough", "concat", "float")

# States of a tensor in the rebuilt graph.
_FLOAT, _QUANT, _PENDING = "float", "quantized", "pending-activation"


def spec_weight_name(wrapper) -> str:
    """The name of the first weight the wrapper's spec quantizes (for messages)."""
    spec = wrapper.layer_spec
    return spec.weights[0][0] if spec is not None and spec.weights else "kernel"


def _unsupported_error(layer) -> ValueError:
    name, cls = layer.name, type(layer).__name__
    return ValueError(
        f"Layer {name!r} ({cls}) is not supported by QAT: tfopt does not know where the int8 "
        "kernels want its fake-quantization. Leave it in float by annotating only the other "
        "layers, e.g.\n"
        "    annotated = keras.models.clone_model(model, clone_function=lambda layer: layer if "
        f"layer.name == {name!r} else tfopt.quantization.quantize_annotate_layer(layer))\n"
        "    qat_model = tfopt.quantization.quantize_apply(annotated)\n"
        f"or give it a QuantizeConfig: quantize_annotate_layer(layer, quantize_config=...).\n"
        "Or register its class: tfopt.quantization.register_layer(cls, LayerSpec(...)). "
        f"Layers handled (built-in and registered): {', '.join(registry.supported_layers())}."
    )


class _Planner:
    """Walks the graph once to decide, per layer, what QAT does with it."""

    def __init__(self, model, annotated_only: bool):
        self.model = model
        self.nodes = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.operation is not None and not node.is_input:
                    self.nodes.append(node)
        self.consumers: dict[int, list] = {}
        for node in self.nodes:
            for t in node.input_tensors:
                self.consumers.setdefault(id(t), []).append(node)
        for out in model.outputs:
            self.consumers.setdefault(id(out), []).append(None)  # a model output
        self.annotated_only = annotated_only
        self.entries = {}  # id(layer) -> (inner layer, quantize, custom QuantizeConfig)
        self.producer = {id(out): node for node in self.nodes for out in node.outputs}
        self.float_operations = []  # operation nodes with no int8 kernel: left in float
        seen = set()
        for node in self.nodes:
            layer = node.operation
            if id(layer) in seen:
                raise ValueError(
                    f"Layer {layer.name!r} is called more than once in model {model.name!r}. "
                    "QAT needs one set of ranges per call: give each call its own layer."
                )
            seen.add(id(layer))
            if is_operation_node(layer):
                self.entries[id(layer)] = self._operation_entry(node)
            else:
                self.entries[id(layer)] = self._entry(layer)
        self.folded = {}  # id(bn node) -> producing node
        for node in self.nodes:
            self._plan_fold(node)
        self.groups = _ConcatGroups(self)

    def _entry(self, layer):
        if isinstance(layer, QuantizeAnnotate):
            inner, custom = layer.layer, layer.quantize_config
            quantize = True
        else:
            inner, custom, quantize = layer, None, not self.annotated_only
        if isinstance(inner, keras.Model):
            raise ValueError(
                f"Layer {inner.name!r} is a nested model. Quantize a flat model: rebuild it "
                "so its layers are called directly, or quantize the nested model on its own."
            )
        spec = registry.spec_for(inner)
        if quantize and custom is None and spec is None:
            raise _unsupported_error(inner)
        if custom is None and spec is not None and spec.kind == "float":
            if quantize:  # no int8 kernel: left float on purpose, and said so
                self.float_operations.append(inner)
            return inner, False, None
        return inner, quantize and (custom is not None or spec is not None), custom

    def _operation_entry(self, node):
        """An `ops` call (`x + 3.0`, `ops.mean`...): quantized where TFLite has the int8 kernel.

        With annotations (`quantize_apply`), an operation is quantized when every
        tensor it reads comes from a quantized layer. One with no int8 kernel stays
        float (listed in `float_operations`; the file names it too).
        """
        op = node.operation
        spec = registry.spec_for(op)
        if spec is not None and spec.kind not in _OPERATION_KINDS:
            raise ValueError(
                f"Operation {op.name!r} ({type(op).__name__}) is registered with kind "
                f"{spec.kind!r}; an operation node has no weights to fold or wrap, so its "
                f"LayerSpec kind must be one of {_OPERATION_KINDS}."
            )
        quantize = spec is not None
        if not any(_is_float(t) for t in node.outputs):
            # A mask or an index (Embedding's `ops.not_equal(ids, 0)`, a comparison, a
            # shape): no float value to quantize; it runs as it is, and is no float compute.
            return op, False, None
        if quantize and self.annotated_only:
            producers = [self.producer.get(id(t)) for t in node.input_tensors]
            # An annotated layer left float on purpose (a masked softmax) still counts:
            # the user asked for the op after it to be quantized.
            quantize = all(
                p is not None
                and (self.entries[id(p.operation)][1] or isinstance(p.operation, QuantizeAnnotate))
                for p in producers
            )
        elif spec is None or spec.kind == "float":
            self.float_operations.append(op)
            quantize = False
        return op, quantize, None

    def spec(self, node):
        inner, quantize, custom = self.entries[id(node.operation)]
        if not quantize or custom is not None:
            return None
        return registry.spec_for(inner)

    def single_consumer(self, node):
        outs = node.outputs
        if len(outs) != 1:
            return None
        users = self.consumers.get(id(outs[0]), [])
        return users[0] if len(users) == 1 else None

    def _plan_fold(self, node):
        spec = self.spec(node)
        if spec is None or spec.kind != "weighted":
            return
        layer = self.entries[id(node.operation)][0]
        if not spec.folds_batchnorm:
            return
        if tflite_scheme.activation_name(getattr(layer, "activation", None)) != "linear":
            return
        user = self.single_consumer(node)
        if user is None:
            return
        user_spec = self.spec(user)
        if user_spec is None or user_spec.kind != "batchnorm":
            return
        bn = self.entries[id(user.operation)][0]
        rank = len(node.outputs[0].shape)
        if (
            bn.axis not in (-1, rank - 1)
            or getattr(layer, "data_format", None) == "channels_first"
        ):
            return
        self.folded[id(user)] = node

    def output_absorbed(self, node):
        """True when the consumer quantizes this node's output for it.

        A weighted op's (possibly BN-folded) or an Add's output feeding exactly
        one fusable ReLU/ReLU6 is quantized by the activation; any quantized output feeding
        only a Concatenate is quantized by the concat (one shared scale).
        """
        tail = node
        user = self.single_consumer(node)
        if user is not None and id(user) in self.folded:
            tail = user
            user = self.single_consumer(tail)
        if user is None:
            return False
        spec = self.spec(user)
        if spec is None:
            return False
        if spec.kind == "concat":
            return True
        if spec.kind == "input_transform" and self.spec(node).kind == "input_transform":
            return True  # preprocessing (Rescaling -> Normalization) runs float, quantized once
        # Value-moving layers that commute with quantization (UpSampling2D nearest,
        # ZeroPadding, Cropping, Reshape, MaxPooling...) between the output and a
        # Concatenate: the concat's one scale reaches back through them, as the
        # converter propagates it, so the output is rounded once (a U-Net skip).
        chain, chain_spec = user, spec
        while chain_spec is not None and chain_spec.kind == "passthrough":
            chain = self.single_consumer(chain)
            chain_spec = None if chain is None else self.spec(chain)
            if chain_spec is not None and chain_spec.kind == "concat":
                return True
        if spec.kind != "activation":
            return False
        # TFLite's int8 CONV / DEPTHWISE / FULLY_CONNECTED / ADD / SUB fuse a ReLU(6).
        return self.spec(node).fuses_activation

    def computes_float(self, node) -> bool:
        """True for a layer left in float that computes (not only moves) values."""
        inner, quantize, _ = self.entries[id(node.operation)]
        spec = registry.spec_for(inner)
        return not quantize and not (spec is not None and spec.kind == "passthrough")

    def feeds_only_float(self, tensor) -> bool:
        """True when every user of `tensor` is a layer left in float that computes."""
        users = self.consumers.get(id(tensor), [])
        return all(user is not None and self.computes_float(user) for user in users)

    def bn_of(self, node):
        user = self.single_consumer(node)
        if user is not None and self.folded.get(id(user)) is node:
            return user
        return None


class _ConcatGroups:
    """Which tensors share one range (a SharedQuantize) because they meet in a Concatenate.

    TFLite's CONCATENATION takes its inputs on its output's scale. An input whose
    producer feeds only the concat (through value-moving layers) is left
    unquantized and the concat's quantizer rounds it once (`output_absorbed`).
    Any other input on its own scale (a U-Net skip that also feeds the encoder, a
    model input, a concat's output feeding another concat) would be requantized
    in the file; such inputs, and the concat's output, become members of one
    `SharedQuantize` range. Concats that share a member share the group.
    Inputs on a range the kernels fix (softmax, sigmoid, tanh outputs) or on
    their input's grid (average pooling) stay requantized.
    """

    def __init__(self, plan):
        self.plan = plan
        self.node_member = {}  # id(node) -> (group, index): a wrapper's output
        self.tensor_member = {}  # id(concat input tensor) -> (group, index): a float input
        self.sizes = []  # members per group
        parent = {}

        def find(key):
            while parent.setdefault(key, key) != key:
                key = parent[key]
            return key

        concats, wanted = [], {}
        for node in plan.nodes:
            spec = plan.spec(node)
            if spec is None or spec.kind != "concat" or len(node.outputs) != 1:
                continue
            members = []
            for t in node.input_tensors:
                found = self._member_key(t)
                if found is not None:
                    members.append(found)
            if any(key[0] != "absorbed" for key in members):
                concats.append(node)
                wanted[id(node)] = [k for k in members if k[0] != "absorbed"]
        for node in concats:
            find(("node", id(node)))
            for key in wanted[id(node)]:
                parent[find(key)] = find(("node", id(node)))
        order = {id(n): i for i, n in enumerate(plan.nodes)}
        roots = {}
        self.names = []  # a name per group: its first concat's
        for key in sorted(parent, key=lambda k: (order.get(k[1], -1), k)):
            root = find(key)
            if root not in roots:
                roots[root] = len(roots)
                self.sizes.append(0)
                self.names.append(None)
            group = roots[root]
            index = self.sizes[group]
            self.sizes[group] += 1
            (self.node_member if key[0] == "node" else self.tensor_member)[key[1]] = (group, index)
        for node in concats:
            group = self.node_member[id(node)][0]
            if self.names[group] is None:
                self.names[group] = node.operation.name

    def _member_key(self, tensor):
        """("node", id) / ("tensor", id) of the member that puts `tensor` on the group's
        grid, ("absorbed",) when the concat rounds it anyway, or None (stays requantized)."""
        plan = self.plan
        start, node = tensor, plan.producer.get(id(tensor))
        while node is not None and self._moves_values(node) and len(node.input_tensors) == 1:
            tensor = node.input_tensors[0]
            node = plan.producer.get(id(tensor))
        if node is None or not plan.entries[id(node.operation)][1]:
            return ("tensor", id(start))  # a model input or a float layer's output
        if id(node) in plan.folded:  # a BatchNormalization folded into its conv
            node = plan.folded[id(node)]
        if len(node.outputs) != 1:
            return None
        spec = plan.spec(node)
        if spec is None:  # a custom QuantizeConfig
            return None
        if spec.kind == "concat":
            return ("absorbed",) if plan.output_absorbed(node) else ("node", id(node))
        if spec.kind not in ("weighted", "output", "activation"):
            return None
        inner = plan.entries[id(node.operation)][0]
        if tflite_scheme.output_activation(inner) in tflite_scheme.FIXED_OUTPUT_RANGES:
            return None
        return ("absorbed",) if plan.output_absorbed(node) else ("node", id(node))

    def _moves_values(self, node):
        inner, _, custom = self.plan.entries[id(node.operation)]
        spec = registry.spec_for(inner)
        return custom is None and spec is not None and spec.kind == "passthrough"


def _split_separable(layer, args, config, preserve_sparsity):
    """SeparableConv2D -> quantized DepthwiseConv2D (output quantized) + 1x1 Conv2D.

    Returns the pointwise Conv2D (to wrap like any conv), its input args,
    [(layer, weights)] to copy once built, and the depthwise wrapper.
    """
    L = keras.layers
    depthwise = L.DepthwiseConv2D(
        kernel_size=layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        depth_multiplier=layer.depth_multiplier,
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
        use_bias=False,
        name=f"{layer.name}_depthwise",
    )
    pointwise = L.Conv2D(
        layer.filters,
        1,
        use_bias=layer.use_bias,
        activation=layer.activation,
        data_format=layer.data_format,
        name=f"{layer.name}_pointwise",
    )
    qc = LayerQuantizeConfig(
        weights={"kernel": "depthwise"},
        quantize_output=True,
        config=config,
        preserve_sparsity=preserve_sparsity,
    )
    wrapper = QuantizeWrapper(depthwise, qc)
    hidden = wrapper(*args)
    weights = layer.get_weights()
    copies = [(depthwise, weights[:1]), (pointwise, weights[1:])]
    return pointwise, (hidden,), copies, wrapper


def _is_float(tensor) -> bool:
    return keras.backend.standardize_dtype(tensor.dtype).startswith(("float", "bfloat"))


def _graph_view(model):
    """The functional graph of a Sequential or functional model."""
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def _time_distributed(layer):
    """The TimeDistributed layer `layer` is, or annotates (QuantizeAnnotate), else None."""
    inner = layer.layer if isinstance(layer, QuantizeAnnotate) else layer
    return inner if isinstance(inner, keras.layers.TimeDistributed) else None


def _unrolled_time_distributed(layer, x):
    """`TimeDistributed(inner)(x)` as reshape -> inner -> reshape, so that QAT sees the
    inner layer itself (a Dense, a Conv2D...) with the time steps folded into the batch.

    Raises:
        ValueError: the time dimension of `x` is not known (None): the reshape back
            needs it.
    """
    steps = x.shape[1]
    if steps is None:
        raise ValueError(
            f"Layer {layer.name!r} (TimeDistributed) has an input of unknown time length "
            f"{tuple(x.shape)}: QAT folds the time steps into the batch and needs their "
            "number. Give the model's Input a fixed length, e.g. keras.Input((20, ...))."
        )
    annotation = layer if isinstance(layer, QuantizeAnnotate) else None
    layer = _time_distributed(layer)
    inner = layer.layer
    if annotation is not None:  # quantize_apply: the inner layer carries the annotation
        inner = QuantizeAnnotate(inner, annotation.quantize_config)
    folded = keras.ops.reshape(x, (-1, *x.shape[2:]))
    y = inner(folded)
    return keras.ops.reshape(y, (-1, steps, *y.shape[1:]))


def _attention_like(layer, annotated_only=False):
    """A MultiHeadAttention or EinsumDense that QAT takes apart (see `_attention`), or
    annotates with the default config; else None. With `annotated_only` (quantize_apply),
    only an annotated one: what the user left unannotated stays as it is."""
    annotated = isinstance(layer, QuantizeAnnotate)
    if annotated and layer.quantize_config is not None:
        return None  # the user's own QuantizeConfig decides
    if annotated_only and not annotated:
        return None
    inner = layer.layer if annotated else layer
    if _attention.decomposable_attention(inner):
        return inner
    if _attention.einsum_as_dense_plan(inner) is not None:
        return inner
    return None


def _attention_pieces(layer, args, kwargs):
    """`layer(*args, **kwargs)` built from the int8 pieces, or None to call it as it is."""
    annotate = QuantizeAnnotate if isinstance(layer, QuantizeAnnotate) else None
    inner = _attention_like(layer)
    if isinstance(inner, keras.layers.MultiHeadAttention):
        return _attention.decomposed_attention(inner, args, kwargs, annotate=annotate)
    x = args[0] if args else kwargs.get("inputs")
    return _attention.einsum_dense_as_dense(inner, x, annotate=annotate)


def _check_float32_compute(model):
    """Refuses layers computing in float16/bfloat16: the fake-quant ops take float32."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        policy = getattr(layer, "dtype_policy", None)
        compute = getattr(policy, "compute_dtype", "float32")
        if compute not in ("float32", None) and str(compute).startswith(("float", "bfloat")):
            raise ValueError(
                f"Layer {layer.name!r} computes in {compute} (dtype policy "
                f"{getattr(policy, 'name', policy)!r}): QAT fake-quantizes float32 tensors and "
                "TFLite's integer kernels replace the float ones anyway. Build the model "
                "under keras.mixed_precision.set_global_policy('float32') (or give its "
                "layers dtype='float32') and copy the weights over, then quantize it."
            )


def inline_nested_models(model, annotated_only=False):
    """`model` with each nested Sequential or functional model's layers called directly.

    keras.applications.ConvNeXt builds its stem and downsampling blocks as nested
    Sequential models; QAT needs one flat graph. A TimeDistributed layer becomes its
    inner layer between two reshapes (`_unrolled_time_distributed`); a
    MultiHeadAttention and an EinsumDense become the ops TFLite runs them as
    (`tfopt.quantization._attention`; with `annotated_only`, only the annotated
    ones). The layers are
    the same objects (the QAT transform clones them); a model with nothing nested is
    returned as is.
    """
    if not any(
        is_graph_model(layer) or _time_distributed(layer) or _attention_like(layer, annotated_only)
        for layer in model.layers
    ):
        return model

    taken_apart = {}  # id(layer) -> name: each MultiHeadAttention/EinsumDense called once

    def run(graph, inputs):
        graph = _graph_view(graph)
        values = {id(t): new for t, new in zip(graph.inputs, inputs)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.operation is None or node.is_input:
                    continue
                op = node.operation
                if is_graph_model(op):
                    outputs = run(op, [values[id(t)] for t in node.input_tensors])
                elif _time_distributed(op) is not None:
                    outputs = _unrolled_time_distributed(op, values[id(node.input_tensors[0])])
                else:
                    args, kwargs = node.arguments.fill_in(
                        {id(t): values[id(t)] for t in node.input_tensors}
                    )
                    outputs = None
                    if _attention_like(op, annotated_only):
                        if id(op) in taken_apart:
                            raise ValueError(
                                f"Layer {op.name!r} is called more than once in model "
                                f"{model.name!r}. QAT needs one set of ranges per call: give "
                                "each call its own layer."
                            )
                        taken_apart[id(op)] = op.name
                        outputs = _attention_pieces(op, args, kwargs)
                    if outputs is None:
                        outputs = op(*args, **kwargs)
                flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                for old, new in zip(node.outputs, flat):
                    values[id(old)] = new
        return [values[id(t)] for t in graph.outputs]

    inputs = []
    for t in model.inputs:
        history = getattr(t, "_keras_history", None)
        name = history.operation.name if history else t.name
        inputs.append(keras.Input(shape=t.shape[1:], dtype=t.dtype, name=name))
    outputs = run(model, inputs)
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=model.name,
    )


def transform(
    model: keras.Model,
    config: QuantizationConfig,
    annotated_only: bool,
    preserve_sparsity: bool = False,
):
    """The QAT model of a functional `model` (layers cloned; `model` is left as it was)."""
    _check_float32_compute(model)
    model = inline_nested_models(model, annotated_only)
    plan = _Planner(model, annotated_only)
    if plan.float_operations:
        names = ", ".join(f"{op.name} ({type(op).__name__})" for op in plan.float_operations[:8])
        more = " ..." if len(plan.float_operations) > 8 else ""
        warnings.warn(
            f"Model {model.name!r}: {len(plan.float_operations)} layer(s) or operation(s) have "
            f"no int8 TFLite kernel tfopt knows of and stay float (dequantized before, "
            f"quantized after): {names}{more}. The exported file lists them as ops left in "
            "float; tfopt.quantization.register_layer(<its class>, LayerSpec(...)) declares "
            "one.",
            stacklevel=3,
        )
    values: dict[int, tuple] = {}  # id(old tensor) -> (new tensor, state)
    new_inputs = []
    for t in model.inputs:
        history = getattr(t, "_keras_history", None)
        name = history.operation.name if history else t.name
        new = keras.Input(shape=t.shape[1:], dtype=t.dtype, name=name)
        new_inputs.append(new)
        values[id(t)] = (new, _FLOAT)
    quantized_cache: dict[int, object] = {}
    weight_copies = []
    wrappers = []

    groups = plan.groups
    shared = [
        SharedQuantize(
            members=size,
            quantizer=LayerQuantizeConfig(config=config).activation_quantizer(),
            name=f"shared_quantize_{name}".replace("/", "_"),
        )
        for size, name in zip(groups.sizes, groups.names)
    ]

    def quantized(old):
        new, state = values[id(old)]
        if state != _FLOAT or not _is_float(new):  # integer ids (Embedding) stay as they are
            return new
        if id(old) in groups.tensor_member and id(old) not in quantized_cache:
            group, index = groups.tensor_member[id(old)]
            quantized_cache[id(old)] = shared[group](new, member=index)
        if id(old) not in quantized_cache:
            layer = QuantizeLayer(
                LayerQuantizeConfig(config=config).activation_quantizer(),
                name=f"quantize_{old.name}".replace("/", "_"),
            )
            quantized_cache[id(old)] = layer(new)
        return quantized_cache[id(old)]

    dequantized_cache: dict[int, object] = {}

    def dequantized(old):
        new, state = values[id(old)]
        if state == _FLOAT or not _is_float(new):
            return new
        if id(old) not in dequantized_cache:
            layer = FloatBoundary(name=f"float_boundary_{old.name}".replace("/", "_"))
            dequantized_cache[id(old)] = layer(new)
        return dequantized_cache[id(old)]

    for node in plan.nodes:
        if id(node) in plan.folded:  # a BatchNormalization folded into its producer
            producer_out = node.input_tensors[0]
            values[id(node.outputs[0])] = values[id(producer_out)]
            continue
        inner, quantize, custom = plan.entries[id(node.operation)]
        spec = plan.spec(node)
        args_map = {}
        raw_inputs = spec is not None and spec.kind in ("passthrough", "input_transform")
        # A layer left in float keeps its value-moving ops (Flatten, Reshape, pooling
        # by max...) on its input's grid; any other starts a float part of the graph.
        float_spec = None if quantize else registry.spec_for(inner)
        exact = float_spec is not None and float_spec.kind == "passthrough"
        if quantize and not raw_inputs:
            for t in node.input_tensors:
                if values[id(t)][1] == _PENDING and spec.kind in ("activation", "concat"):
                    args_map[id(t)] = values[id(t)][0]
                else:
                    args_map[id(t)] = quantized(t)
        elif not quantize and not exact:
            for t in node.input_tensors:
                args_map[id(t)] = dequantized(t)
        else:
            for t in node.input_tensors:
                args_map[id(t)] = values[id(t)][0]
        args, kwargs = node.arguments.fill_in(args_map)
        operation = is_operation_node(inner)
        clone = inner if operation else clone_layer(inner)
        if operation and quantize and spec.kind != "passthrough":
            # An `ops` call: rebuilt as it is, its output quantized after it unless a
            # consumer quantizes it (a fused ReLU, a concat) or it joins a shared range.
            layer, bn = clone, None
            member = groups.node_member.get(id(node))
            pending = plan.output_absorbed(node) and member is None
            state = _PENDING if pending else _QUANT
            post = None
            if not pending and member is None:
                quantizer = LayerQuantizeConfig(config=config).get_output_quantizers(inner)[0]
                post = QuantizeLayer(quantizer, name=f"quant_{inner.name}")
        elif custom is not None:
            layer = QuantizeWrapper(clone, custom)
            quantizes = custom.get_output_quantizers(clone) or (
                custom.get_activations_and_quantizers(clone)
            )
            state = _QUANT if quantizes else _FLOAT
            bn = None
        elif not quantize:
            layer, bn = clone, None
            states = {values[id(t)][1] for t in node.input_tensors}
            state = _QUANT if exact and states == {_QUANT} else _FLOAT
        elif spec.kind == "same_scale":
            qc = LayerQuantizeConfig(quantize_output=False, config=config)
            layer, bn = QuantizeWrapper(clone, qc), None
            state = _QUANT
        elif spec.kind == "passthrough":
            layer, bn = clone, None
            states = {values[id(t)][1] for t in node.input_tensors}
            state = _QUANT if states == {_QUANT} else _PENDING if states == {_PENDING} else _FLOAT
        else:
            bn_node = plan.bn_of(node) if spec.kind == "weighted" else None
            bn_layer = plan.entries[id(bn_node.operation)][0] if bn_node else None  # unannotated
            bn = clone_layer(bn_layer) if bn_node else None
            member = groups.node_member.get(id(node))
            pending = plan.output_absorbed(node) and member is None
            own_ok = tflite_scheme.own_activation_fusable(inner)
            qc = LayerQuantizeConfig(
                weights=dict(spec.weights),
                quantize_output=not pending and member is None,
                quantize_pre_activation=spec.kind == "weighted" and not own_ok,
                config=config,
                dense=spec.dense,
                preserve_sparsity=preserve_sparsity,
            )
            if spec.separable:
                clone, args, copies, depthwise = _split_separable(
                    inner, args, config, preserve_sparsity
                )
                weight_copies.extend(copies)
                wrappers.append(depthwise)
            layer = QuantizeWrapper(clone, qc, batchnorm=bn)
            wrappers.append(layer)
            state = _PENDING if pending else _QUANT
            if bn_node is not None:
                bn = (bn, bn_layer)
        if kwargs.get("mask", 1) is None and not getattr(layer, "_call_has_mask_arg", False):
            kwargs = {k: v for k, v in kwargs.items() if k != "mask"}  # recorded mask=None
        outputs = layer(*args, **kwargs)
        if operation and quantize and spec.kind != "passthrough" and post is not None:
            outputs = post(outputs)
        member = groups.node_member.get(id(node)) if quantize and custom is None else None
        if member is not None:  # its output on its concat group's shared range
            outputs = shared[member[0]](outputs, member=member[1])
        flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for old, new in zip(node.outputs, flat):
            values[id(old)] = (new, state)
            if not quantize and not exact and _is_float(new) and not plan.feeds_only_float(old):
                # The converter gives a TANH/LOGISTIC/SOFTMAX output its fixed int8 scale
                # even when the op runs float, and carries it on through Reshape & co.
                new = FloatBoundary(name=f"float_boundary_{old.name}".replace("/", "_"))(new)
                values[id(old)] = (new, state)
        if not operation and not (
            spec is not None and spec.separable and quantize and custom is None
        ):
            weight_copies.append((clone, inner.get_weights()))
        if bn is not None:
            weight_copies.append((bn[0], bn[1].get_weights()))
    for clone, weights in weight_copies:
        clone.set_weights(weights)
    for layer in wrappers:
        if layer.batchnorm is not None:
            (variable, _), layout = layer._weight_quantizers[0], layer._layouts[0]
            _batchnorm.check_fold(layer, variable, layout, spec_weight_name(layer))
    for layer in wrappers:
        layer.reset_sparsity_masks()
    outputs = [values[id(t)][0] for t in model.outputs]
    outputs = outputs[0] if len(outputs) == 1 else outputs
    inputs = new_inputs[0] if len(new_inputs) == 1 else new_inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_qat")
