"""One converter per Caffe layer type: emits ONNX nodes computing what the engine's layer
computes, from the layer as the engine set it up (its parameters, blobs and shapes).

A converter is f(g, node) -> the ONNX tensor name of each top; `g` (onnx_graph.Graph) holds
the names and adds nodes and initializers; node.layer is the engine's layer. Layers that
pass their bottom through (Split, Dropout in TEST, a Scale folded into BatchNorm) return the
bottom's tensor itself, so they cost no node.

Caffe semantics kept here, beyond the plain op mapping:
- Pooling: output size ceil((H + 2p - k) / s) + 1 with Caffe's clip rule (a last window
  starting at or beyond H + p is dropped), made explicit: Pad (MAX: -FLT_MAX, which is
  also what Caffe gives a window with no input cell; AVE: 0) then floor-mode pooling, so
  no runtime's ceil_mode rule is relied on. AVE divides by the window clipped to
  [-p, H + p), so padding cells count but cells past the padded border do not: where that
  differs from k*k the average is rescaled by a constant k*k / divisor.
- BatchNorm: mean = blob0 / blob2 and var = blob1 / blob2 (the moving-average factor
  divided out, 0 when blob2 is 0, in float32 as Caffe does), eps as given; a following
  in-place Scale the engine folded into it gives gamma and beta.
- LRN: ACROSS_CHANNELS is ONNX LRN (bias = k); WITHIN_CHANNEL is x * (1 + alpha *
  AveragePool(x^2, size, pad (size-1)/2, padding counted))^-beta, as Caffe builds it.
"""
import numpy as np

from ..engine.layers.pooling import FLT_MAX
from ..errors import UserError
from ..proto import caffe_pb2

P = caffe_pb2.PoolingParameter
Op = caffe_pb2.EltwiseParameter
CONVERTERS = {}


def converter(*types):
    def register(func):
        for t in types:
            CONVERTERS[t] = func
        return func
    return register


def refuse(g, node, why):
    layer = node.layer
    return UserError(f"{g.source}: layer '{layer.name}' ({layer.type}): {why}")


@converter("Input")
def _input(g, node):
    return [g.graph_input(blob) for blob in node.tops]


@converter("Split", "Dropout")
def _pass_through(g, node):
    return [g.value(node.bottoms[0])] * len(node.tops)


@converter("Silence")
def _silence(g, node):
    return []


@converter("Convolution", "Deconvolution")
def _conv(g, node):
    layer = node.layer
    weight = g.initializer(f"{layer.name}/weight", layer.blobs[0])
    inputs = [weight] + ([g.initializer(f"{layer.name}/bias", layer.blobs[1])]
                         if layer.bias_term else [])
    op = "ConvTranspose" if layer.transposed else "Conv"
    tops = []
    for j, bottom in enumerate(node.bottoms):
        tops.append(g.add(op, [g.value(bottom)] + inputs, g.top(node, j),
                          kernel_shape=list(layer.kernel), strides=list(layer.stride),
                          pads=list(layer.pad) * 2, dilations=list(layer.dilation),
                          group=layer.group))
    return tops


def pooling_plan(size, kernel, stride, pad, out):
    """Per axis (pad before, pad after, AVE divisors) so that floor-mode pooling of the
    padded input gives Caffe's `out` windows: the last window must fit, hence `after`."""
    after = max(0, (out - 1) * stride + kernel - pad - size)
    divisors = [min(i * stride - pad + kernel, size + pad) - (i * stride - pad)
                for i in range(out)]
    return pad, after, divisors


@converter("Pooling")
def _pooling(g, node):
    layer = node.layer
    if len(node.tops) > 1:
        raise refuse(g, node, "a second top (the argmax mask) has no ONNX counterpart; "
                     "drop the mask top for export")
    shape = g.shapes[node.bottoms[0]]
    plans = [pooling_plan(size, k, s, p, o) for size, k, s, p, o in
             zip(shape[2:], layer.kernel, layer.stride, layer.pad, layer.out)]
    x = g.value(node.bottoms[0])
    before = [p[0] for p in plans]
    after = [p[1] for p in plans]
    is_max = layer.method == P.MAX
    if any(before) or any(after):
        pads = g.constant(f"{layer.name}/pads", np.array([0, 0] + before + [0, 0] + after,
                                                         np.int64))
        fill = g.constant(f"{layer.name}/pad_value",
                          np.array(-FLT_MAX if is_max else 0.0, np.float32))
        x = g.add("Pad", [x, pads, fill], g.temp(f"{layer.name}/padded"), mode="constant")
    attrs = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride))
    if is_max:
        return [g.add("MaxPool", [x], g.top(node, 0), **attrs)]
    kh, kw = layer.kernel
    divisor = np.outer(plans[0][2], plans[1][2]).astype(np.float64)
    if (divisor == kh * kw).all():
        return [g.add("AveragePool", [x], g.top(node, 0), **attrs)]
    mean = g.add("AveragePool", [x], g.temp(f"{layer.name}/mean_over_kernel"), **attrs)
    correction = g.constant(f"{layer.name}/divisor_correction",
                            (kh * kw / divisor).astype(np.float32)[None, None])
    return [g.add("Mul", [mean, correction], g.top(node, 0))]


@converter("InnerProduct")
def _inner_product(g, node):
    layer = node.layer
    flat = g.add("Flatten", [g.value(node.bottoms[0])], g.temp(f"{layer.name}/flat"),
                 axis=layer.axis)
    inputs = [flat, g.initializer(f"{layer.name}/weight", layer.blobs[0])]
    if layer.bias_term:
        inputs.append(g.initializer(f"{layer.name}/bias", layer.blobs[1]))
    if layer.axis == 1:
        return [g.add("Gemm", inputs, g.top(node, 0), transB=0 if layer.transpose else 1)]
    y = g.add("Gemm", inputs, g.temp(f"{layer.name}/gemm"), transB=0 if layer.transpose else 1)
    return [g.reshape_to(y, node.tops[0], g.top(node, 0))]


@converter("ReLU")
def _relu(g, node):
    slope = node.layer.param.relu_param.negative_slope
    x = g.value(node.bottoms[0])
    if slope:
        return [g.add("LeakyRelu", [x], g.top(node, 0), alpha=float(slope))]
    return [g.add("Relu", [x], g.top(node, 0))]


@converter("PReLU")
def _prelu(g, node):
    layer = node.layer
    rank = len(g.shapes[node.bottoms[0]])
    slope = layer.blobs[0].detach().cpu().numpy().reshape(-1)
    if not layer.shared:
        slope = slope.reshape((-1,) + (1,) * (rank - 2))
    slope_name = g.initializer(f"{layer.name}/slope", slope)
    return [g.add("PRelu", [g.value(node.bottoms[0]), slope_name], g.top(node, 0))]


def _unary(op):
    def convert(g, node):
        return [g.add(op, [g.value(node.bottoms[0])], g.top(node, 0))]
    return convert


CONVERTERS.update(Sigmoid=_unary("Sigmoid"), TanH=_unary("Tanh"), AbsVal=_unary("Abs"))


@converter("ELU")
def _elu(g, node):
    return [g.add("Elu", [g.value(node.bottoms[0])], g.top(node, 0),
                  alpha=float(node.layer.param.elu_param.alpha))]


@converter("Power")
def _power(g, node):
    p = node.layer.param.power_param            # (shift + scale * x) ^ power
    name = node.layer.name
    x = g.value(node.bottoms[0])
    steps = []
    if p.scale != 1:
        steps.append(("Mul", p.scale))
    if p.shift != 0:
        steps.append(("Add", p.shift))
    if p.power != 1:
        steps.append(("Pow", p.power))
    if not steps:
        return [x]
    for i, (op, value) in enumerate(steps):
        out = g.top(node, 0) if i == len(steps) - 1 else g.temp(f"{name}/{op.lower()}")
        x = g.add(op, [x, g.constant(f"{name}/{op.lower()}_value",
                                     np.array(value, np.float32))], out)
    return [x]


@converter("BatchNorm")
def _batch_norm(g, node):
    layer = node.layer
    shape = g.shapes[node.bottoms[0]]
    if not layer.use_global_stats:
        raise refuse(g, node, "use_global_stats: false normalises with each batch's own "
                     "statistics; export needs the stored ones (the TEST default)")
    if len(shape) < 2:
        raise refuse(g, node, f"a {len(shape)}-axis input has no channel axis for ONNX "
                     "BatchNormalization")
    mean_sum, var_sum, factor = (b.detach().cpu().numpy().astype(np.float32)
                                 for b in layer.blobs)
    # Caffe: s = 1/blob2 (0 when blob2 is 0), in float32; mean = s*blob0, var = s*blob1
    s = np.float32(0) if factor[0] == 0 else np.float32(1) / factor[0]
    mean, var = mean_sum * s, var_sum * s
    channels = layer.channels
    gamma, beta = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    if layer.scale_layer is not None:
        scale = layer.scale_layer
        gamma = scale.blobs[0].detach().cpu().numpy().astype(np.float32)
        if scale.bias_term:
            beta = scale.blobs[-1].detach().cpu().numpy().astype(np.float32)
    name = layer.name
    inputs = [g.value(node.bottoms[0]), g.initializer(f"{name}/gamma", gamma),
              g.initializer(f"{name}/beta", beta), g.initializer(f"{name}/mean", mean),
              g.initializer(f"{name}/var", var)]
    return [g.add("BatchNormalization", inputs, g.top(node, 0), epsilon=float(layer.eps))]


def _broadcast_operand(g, node, index_or_blob, axis, what):
    """The scale/bias operand viewed so that ONNX's trailing-aligned broadcast applies it
    along `axis`: a learned blob is reshaped as an initializer, a second bottom gets
    trailing size-1 axes (Unsqueeze)."""
    layer = node.layer
    rank = len(g.shapes[node.bottoms[0]])
    if isinstance(index_or_blob, int):
        values = layer.blobs[index_or_blob].detach().cpu().numpy().astype(np.float32)
        trailing = rank - axis - values.ndim
        return g.initializer(f"{layer.name}/{what}", values.reshape(values.shape +
                                                                   (1,) * trailing))
    operand = g.value(index_or_blob)
    trailing = rank - axis - len(g.shapes[index_or_blob])
    if trailing == 0:
        return operand
    axes = g.constant(f"{layer.name}/{what}_axes",
                      np.arange(rank - trailing, rank, dtype=np.int64))
    return g.add("Unsqueeze", [operand, axes], g.temp(f"{layer.name}/{what}_view"))


@converter("Scale")
def _scale(g, node):
    layer = node.layer
    if layer.folded:                         # applied by the BatchNorm before it
        return [g.value(node.bottoms[0])]
    x = g.value(node.bottoms[0])
    s = _broadcast_operand(g, node, node.bottoms[1] if layer.two_bottoms else 0, layer.axis,
                           "scale")
    if not layer.bias_term:
        return [g.add("Mul", [x, s], g.top(node, 0))]
    scaled = g.add("Mul", [x, s], g.temp(f"{layer.name}/scaled"))
    b = _broadcast_operand(g, node, len(layer.blobs) - 1, layer.bias_axis, "bias")
    return [g.add("Add", [scaled, b], g.top(node, 0))]


@converter("Bias")
def _bias(g, node):
    layer = node.layer
    b = _broadcast_operand(g, node, node.bottoms[1] if layer.two_bottoms else 0, layer.axis,
                           "bias")
    return [g.add("Add", [g.value(node.bottoms[0]), b], g.top(node, 0))]


@converter("Eltwise")
def _eltwise(g, node):
    layer = node.layer
    xs = [g.value(b) for b in node.bottoms]
    if layer.op == Op.PROD:
        y = xs[0]
        for i, x in enumerate(xs[1:], 1):
            out = g.top(node, 0) if i == len(xs) - 1 else g.temp(f"{layer.name}/prod{i}")
            y = g.add("Mul", [y, x], out)
        return [y]
    if layer.op == Op.MAX:
        return [g.add("Max", xs, g.top(node, 0))]
    terms = []
    for i, (c, x) in enumerate(zip(layer.coeff or [1.0] * len(xs), xs)):
        if c != 1:
            coeff = g.constant(f"{layer.name}/coeff{i}", np.array(c, np.float32))
            x = g.add("Mul", [x, coeff], g.temp(f"{layer.name}/term{i}"))
        terms.append(x)
    return [g.add("Sum", terms, g.top(node, 0))]


@converter("Concat")
def _concat(g, node):
    xs = [g.value(b) for b in node.bottoms]
    if len(xs) == 1:
        return xs
    return [g.add("Concat", xs, g.top(node, 0), axis=node.layer.axis)]


@converter("Slice")
def _slice(g, node):
    layer = node.layer
    sizes = g.constant(f"{layer.name}/sizes", np.array(layer.sizes, np.int64))
    outs = [g.top(node, j) for j in range(len(node.tops))]
    return g.add("Split", [g.value(node.bottoms[0]), sizes], outs, axis=layer.axis)


@converter("Softmax")
def _softmax(g, node):
    return [g.add("Softmax", [g.value(node.bottoms[0])], g.top(node, 0), axis=node.layer.axis)]


@converter("Flatten", "Reshape")
def _reshape(g, node):
    return [g.reshape_to(g.value(node.bottoms[0]), node.tops[0], g.top(node, 0))]


@converter("LRN")
def _lrn(g, node):
    layer = node.layer
    x = g.value(node.bottoms[0])
    if not layer.within:
        return [g.add("LRN", [x], g.top(node, 0), size=int(layer.size), alpha=float(layer.alpha),
                      beta=float(layer.beta), bias=float(layer.k))]
    name, pad = layer.name, (layer.size - 1) // 2
    square = g.add("Mul", [x, x], g.temp(f"{name}/square"))
    mean = g.add("AveragePool", [square], g.temp(f"{name}/mean_square"),
                 kernel_shape=[layer.size] * 2, strides=[1, 1], pads=[pad] * 4,
                 count_include_pad=1)
    const = lambda what, v: g.constant(f"{name}/{what}", np.array(v, np.float32))  # noqa: E731
    scaled = g.add("Mul", [mean, const("alpha", layer.alpha)], g.temp(f"{name}/alpha_mean"))
    shifted = g.add("Add", [scaled, const("one", 1.0)], g.temp(f"{name}/scale"))
    power = g.add("Pow", [shifted, const("minus_beta", -layer.beta)], g.temp(f"{name}/power"))
    return [g.add("Mul", [x, power], g.top(node, 0))]


HINTS = {
    "Data": "a train_val net's data layer: export the deploy net (an Input layer instead)",
    "SoftmaxWithLoss": "a loss layer: export the deploy net (Softmax instead of the loss)",
    "Accuracy": "an evaluation layer: export the deploy net",
}


def check_supported(layer_param, source):
    """UserError naming the layer when its type has no converter."""
    t = layer_param.type
    if t in CONVERTERS:
        return
    why = HINTS.get(t, "no ONNX export for this layer type")
    raise UserError(f"{source}: layer '{layer_param.name}' ({t}): {why}; ONNX export supports "
                    f"{', '.join(sorted(CONVERTERS))}")

