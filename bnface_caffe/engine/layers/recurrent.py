"""Recurrent layers: RNN, LSTM (recurrent_layer.cpp, rnn_layer.cpp, lstm_layer.cpp) and
LSTMUnit (lstm_unit_layer.cpp).

RNN and LSTM are what Caffe makes them: an unrolled net of ordinary layers built as
FillUnrolledNet builds it (Input x / cont / x_static, the recurrent inputs, Slice,
InnerProduct, Scale by cont, Eltwise, TanH or LSTMUnit, Concat, and a Reduction
"pseudo-loss" per output), set up as a Net of its own, so it logs Caffe's lines
(its "Top shape:" lines included) and its learnable blobs are Caffe's, in Caffe's
order: LSTM [W_xc (4H x I), b_c (4H), (W_xc_static,) W_hc (4H x H)]; RNN [W_xh, b_h,
(W_xh_static,) W_hh, W_ho, b_o]. A caffemodel's LSTM/RNN blobs therefore load as they
are, and ours load in Caffe.

Inputs: x (T x N x ...), cont (T x N; 0 starts a new sequence), an optional static
input (N x ...), and with expose_hidden the initial hidden state(s) (1 x N x H) as
further bottoms and the final ones as further tops. Without expose_hidden the final
state of one forward is the initial state of the next (zeros at first), as Caffe
copies it. Gradients: to x, x_static and the parameters; not to cont (Caffe
LOG(FATAL)s), not across forwards, and not through exposed hidden bottoms/tops
(Caffe shares only their data, not their diffs).
"""
import torch

from ...proto import caffe_pb2
from ...shapes import shape_string
from .base import Layer, register

FillerParameter = caffe_pb2.FillerParameter


def _sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def _tanh(x):
    return 2.0 * _sigmoid(2.0 * x) - 1.0     # lstm_unit_layer.cpp's tanh


class _LSTMUnit(torch.autograd.Function):
    """c = f * c_prev + i * g, h = o * tanh(c) with f = 0 where cont == 0, else cont *
    sigmoid(x_f); backward as Caffe's (its forget-gate term is f * (1 - f), which is
    the derivative only for cont in {0, 1})."""

    @staticmethod
    def forward(ctx, c_prev, x, cont):
        hidden = c_prev.shape[2]
        xi, xf, xo, xg = x.split(hidden, dim=2)
        cont = cont.unsqueeze(2)
        i, o, g = _sigmoid(xi), _sigmoid(xo), _tanh(xg)
        f = torch.where(cont == 0, torch.zeros_like(xf), cont * _sigmoid(xf))
        c = f * c_prev + i * g
        tanh_c = _tanh(c)
        h = o * tanh_c
        ctx.save_for_backward(c_prev, i, f, o, g, tanh_c)
        return c, h

    @staticmethod
    def backward(ctx, grad_c, grad_h):
        c_prev, i, f, o, g, tanh_c = ctx.saved_tensors
        c_term = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        grad_x = torch.cat([c_term * g * i * (1 - i), c_term * c_prev * f * (1 - f),
                            grad_h * tanh_c * o * (1 - o), c_term * i * (1 - g * g)], dim=2)
        return c_term * f, grad_x, None


@register
class LSTMUnit(Layer):
    """Bottoms c_prev (1 x N x H), gates (1 x N x 4H: i, f, o, g), cont (1 x N);
    tops c, h (1 x N x H)."""
    type = "LSTMUnit"
    bottoms = (3, 3)
    tops = (2, 2)

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def backward_refused(self, bottom_index):
        return "LSTMUnit cannot backpropagate to sequence indicators" if bottom_index == 2 else None

    def reshape(self, bottom_shapes):
        c_prev, gates, cont = bottom_shapes
        for i, (shape, axes) in enumerate(((c_prev, 3), (gates, 3), (cont, 2))):
            if len(shape) != axes or shape[0] != 1 or shape[1] != c_prev[1]:
                raise self.error(f"bottom {i} is {shape_string(shape)}; expected {axes} axes "
                                 f"1 x N{' x D' * (axes - 2)} with N = {c_prev[1]} (c_prev, "
                                 "gates, cont)")
        if gates[2] != 4 * c_prev[2]:
            raise self.error(f"the gate input has {gates[2]} channels; it must be 4 x the "
                             f"hidden size {c_prev[2]} (i, f, o, g)")
        return [c_prev, c_prev]

    def forward(self, bottoms):
        c_prev, gates, cont = bottoms
        return list(_LSTMUnit.apply(c_prev, gates.to(c_prev.dtype),
                                    cont.detach().to(c_prev.dtype)))


# ---------------------------------------------------------------- the unrolled net

def _layer(net, type_, name, bottoms=(), tops=(), params=()):
    lp = net.layer.add(name=name, type=type_)
    lp.bottom.extend(bottoms)
    lp.top.extend(tops)
    for p in params:
        lp.param.add(name=p)
    return lp


def _inner_product(net, name, bottom, top, params, num_output, axis, weight_filler,
                   bias_filler=None, propagate_down=False):
    lp = _layer(net, "InnerProduct", name, [bottom], [top], params)
    p = lp.inner_product_param
    p.num_output, p.axis = num_output, axis
    p.bias_term = bias_filler is not None
    p.weight_filler.CopyFrom(weight_filler)
    if bias_filler is not None:
        p.bias_filler.CopyFrom(bias_filler)
    if propagate_down:
        lp.propagate_down.append(True)
    return lp


def _static_transform(net, prefix, num_output, weight_filler):
    """W_x?_x_static = W * x_static (axis 1), reshaped to 1 x N x num_output."""
    _inner_product(net, f"{prefix}_x_static", "x_static", f"{prefix}_x_static_preshape",
                   [f"{prefix}_static"], num_output, 1, weight_filler, propagate_down=True)
    lp = _layer(net, "Reshape", f"{prefix}_x_static_reshape", [f"{prefix}_x_static_preshape"],
                [f"{prefix}_x_static"])
    lp.reshape_param.shape.dim.extend([1, -1, num_output])


class _Recurrent(Layer):
    recur_inputs = ()        # names of the recurrent input blobs (h_0, ...)
    output = ""              # the unrolled net's output blob
    gates = 1                # InnerProduct outputs per hidden unit

    def __init__(self, param, phase):
        super().__init__(param, phase)
        n = len(self.recur_inputs) if param.recurrent_param.expose_hidden else 0
        self.bottoms = (2 + n, 3 + n)
        self.tops = (1 + n, 1 + n)

    def recur_outputs(self):
        raise NotImplementedError

    def fill_unrolled(self, net, weight_filler, bias_filler):
        raise NotImplementedError

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def backward_refused(self, bottom_index):
        return (f"{self.type} cannot backpropagate to sequence indicators (cont)"
                if bottom_index == 1 else None)

    def setup(self, bottom_shapes):
        from ..net import Net    # the unrolled net is a Net (net.py imports the layers)
        p = self.param.recurrent_param
        x, cont = bottom_shapes[:2]
        if len(x) < 2:
            raise self.error(f"bottom 0 {shape_string(x)} must have at least 2 axes -- "
                             "(#timesteps, #streams, ...)")
        self.T, self.N = x[0], x[1]
        self.log.info("recurrent_layer.cpp:20", "Initializing recurrent layer: assuming input "
                      f"batch contains {self.T} timesteps of {self.N} independent streams.")
        self._check_cont(cont)
        self.expose = p.expose_hidden
        self.static = len(bottom_shapes) > 2 + (len(self.recur_inputs) if self.expose else 0)
        if self.static:
            s = bottom_shapes[2]
            if len(s) < 1 or s[0] != self.N:
                raise self.error(f"the static input {shape_string(s)} must have N = {self.N} "
                                 "rows (one per stream)")
        if p.num_output <= 0:
            raise self.error("num_output must be positive (recurrent_param { num_output: H })")
        self.hidden = p.num_output
        net = caffe_pb2.NetParameter()
        inputs = _layer(net, "Input", "", tops=["x", "cont"] + (["x_static"] if self.static else []))
        for shape in bottom_shapes[:3 if self.static else 2]:
            inputs.input_param.shape.add().dim.extend(shape)
        weight_filler = FillerParameter()
        weight_filler.CopyFrom(p.weight_filler)
        bias_filler = FillerParameter()
        bias_filler.CopyFrom(p.bias_filler)
        self.fill_unrolled(net, weight_filler, bias_filler)
        if self.name:
            for lp in net.layer:
                lp.name = f"{self.name}_{lp.name}"
        self.pseudo_losses = [f"{self.output}_pseudoloss"]
        for name in self.pseudo_losses:    # makes the unrolled net's backward reach everything
            _layer(net, "Reduction", name, [self.output], [name]).loss_weight.append(1)
        self.unrolled = Net(net, phase=None, level=None, device=self.device, fast=self.fast,
                            source=f"layer '{self.name}' ({self.type}), its unrolled net",
                            logger=_CaffeLinesOnly(self.log))
        self._collect_params()
        self.steps = [n for n in self.unrolled.nodes
                      if n.layer.type != "Input" and n.layer.name not in self.pseudo_losses]
        self.state = None

    def _check_cont(self, cont):
        if len(cont) != 2 or tuple(cont) != (self.T, self.N):
            raise self.error(f"bottom 1 (cont) is {shape_string(cont)}; it must be exactly "
                             f"(#timesteps, #streams) = {self.T} x {self.N}")

    def _collect_params(self):
        """Caffe's layer blobs: the unrolled net's parameters that own themselves, in
        its params() order ("Adding parameter i: name"); every use is bound to them."""
        owner_of, self.blobs, self.bindings = {}, [], []
        index = 0
        for node in self.unrolled.nodes:
            layer = node.layer
            for j, blob in enumerate(layer.blobs):
                name = layer.param.param[j].name
                if name not in owner_of:
                    self.log.info("recurrent_layer.cpp:150", f"Adding parameter {index}: {name}")
                    owner_of[name] = len(self.blobs)
                    self.blobs.append(blob)
                self.bindings.append((layer, j, owner_of[name]))
                index += 1

    def recur_input_shape(self):
        return (1, self.N, self.hidden)

    def reshape(self, bottom_shapes):
        x, cont = bottom_shapes[:2]
        if len(x) < 2:
            raise self.error(f"bottom 0 {shape_string(x)} must have at least 2 axes -- "
                             "(#timesteps, #streams, ...)")
        if x[0] != self.T:
            raise self.error(f"input number of timesteps changed: {x[0]}, set up for {self.T}")
        self.N = x[1]
        self._check_cont(cont)
        shapes = {"x": tuple(x), "cont": tuple(cont)}
        if self.static:
            shapes["x_static"] = tuple(bottom_shapes[2])
        for name in self.recur_inputs:
            shapes[name] = self.recur_input_shape()
        if self.expose:
            offset = 2 + self.static
            for j, name in enumerate(self.recur_inputs):
                given = tuple(bottom_shapes[offset + j])
                if given != shapes[name]:
                    raise self.error(f"shape mismatch - recurrent input '{name}' is "
                                     f"{shape_string(shapes[name])} but bottom {offset + j} is "
                                     f"{shape_string(given)}")
        if any(self.unrolled.shapes[k] != v for k, v in shapes.items()):
            self.unrolled.reshape(shapes)
            self.state = None
        tops = [self.unrolled.shapes[self.output]]
        if self.expose:
            tops += [self.unrolled.shapes[name] for name in self.recur_outputs()]
        return tops

    def forward(self, bottoms):
        x = bottoms[0]
        values = {"x": x, "cont": bottoms[1].detach().to(x.dtype)}
        if self.static:
            values["x_static"] = bottoms[2]
        if self.expose:     # Caffe shares only the data of these bottoms: no gradient
            offset = 2 + self.static
            for j, name in enumerate(self.recur_inputs):
                values[name] = bottoms[offset + j].detach().to(x.dtype)
        else:               # last forward's final state (zeros at first), not differentiated
            if self.state is None:
                self.state = [torch.zeros(self.recur_input_shape(), dtype=x.dtype,
                                          device=x.device) for _ in self.recur_inputs]
            for name, value in zip(self.recur_inputs, self.state):
                values[name] = value.to(x.dtype)
        for layer, j, k in self.bindings:   # every use computes with this layer's blobs
            layer.blobs[j] = self.blobs[k]
        for node in self.steps:
            node.layer.fast = self.fast
            tops = node.layer.forward([values[b] for b in node.bottoms])
            values.update(zip(node.tops, tops))
        finals = [values[name] for name in self.recur_outputs()]
        if not self.expose:
            self.state = [t.detach() for t in finals]
        tops = [values[self.output]]
        if self.expose:
            tops += [t.detach() for t in finals]
        return tops


@register
class RNN(_Recurrent):
    """h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h (+ W_xh_static x_static)),
    o_t = tanh(W_ho h_t + b_o); top o (T x N x H)."""
    type = "RNN"
    recur_inputs = ("h_0",)
    output = "o"

    def recur_outputs(self):
        return [f"h_{self.T}"]

    def fill_unrolled(self, net, weight_filler, bias_filler):
        H = self.hidden
        inputs = _layer(net, "Input", "", tops=["h_0"])
        inputs.input_param.shape.add().dim.extend(self.recur_input_shape())
        cont_slice = _layer(net, "Slice", "cont_slice", ["cont"])
        cont_slice.slice_param.axis = 0
        _inner_product(net, "x_transform", "x", "W_xh_x", ["W_xh", "b_h"], H, 2, weight_filler,
                       bias_filler, propagate_down=True)
        if self.static:
            _static_transform(net, "W_xh", H, weight_filler)
        x_slice = _layer(net, "Slice", "W_xh_x_slice", ["W_xh_x"])
        x_slice.slice_param.axis = 0
        concat = caffe_pb2.LayerParameter(name="o_concat", type="Concat", top=["o"])
        concat.concat_param.axis = 0
        for t in range(1, self.T + 1):
            cont_slice.top.append(f"cont_{t}")
            x_slice.top.append(f"W_xh_x_{t}")
            _scale_by_cont(net, f"h_{t - 1}", f"cont_{t}")
            _inner_product(net, f"W_hh_h_{t - 1}", f"h_conted_{t - 1}", f"W_hh_h_{t - 1}",
                           ["W_hh"], H, 2, weight_filler)
            _sum(net, f"h_input_sum_{t}", [f"W_hh_h_{t - 1}", f"W_xh_x_{t}"]
                 + (["W_xh_x_static"] if self.static else []), f"h_neuron_input_{t}")
            _layer(net, "TanH", f"h_neuron_{t}", [f"h_neuron_input_{t}"], [f"h_{t}"])
            _inner_product(net, f"W_ho_h_{t}", f"h_{t}", f"W_ho_h_{t}", ["W_ho", "b_o"], H, 2,
                           weight_filler, bias_filler)
            _layer(net, "TanH", f"o_neuron_{t}", [f"W_ho_h_{t}"], [f"o_{t}"])
            concat.bottom.append(f"o_{t}")
        net.layer.add().CopyFrom(concat)


@register
class LSTM(_Recurrent):
    """gates_t = W_hc (cont_t h_{t-1}) + W_xc x_t + b_c (+ W_xc_static x_static), then
    LSTMUnit (c_t, h_t); top h (T x N x H)."""
    type = "LSTM"
    recur_inputs = ("h_0", "c_0")
    output = "h"

    def recur_outputs(self):
        return [f"h_{self.T}", "c_T"]

    def fill_unrolled(self, net, weight_filler, bias_filler):
        H = self.hidden
        inputs = _layer(net, "Input", "", tops=["c_0", "h_0"])
        for _ in range(2):
            inputs.input_param.shape.add().dim.extend(self.recur_input_shape())
        cont_slice = _layer(net, "Slice", "cont_slice", ["cont"])
        cont_slice.slice_param.axis = 0
        _inner_product(net, "x_transform", "x", "W_xc_x", ["W_xc", "b_c"], 4 * H, 2,
                       weight_filler, bias_filler, propagate_down=True)
        if self.static:
            _static_transform(net, "W_xc", 4 * H, weight_filler)
        x_slice = _layer(net, "Slice", "W_xc_x_slice", ["W_xc_x"])
        x_slice.slice_param.axis = 0
        concat = caffe_pb2.LayerParameter(name="h_concat", type="Concat", top=["h"])
        concat.concat_param.axis = 0
        for t in range(1, self.T + 1):
            cont_slice.top.append(f"cont_{t}")
            x_slice.top.append(f"W_xc_x_{t}")
            _scale_by_cont(net, f"h_{t - 1}", f"cont_{t}")
            _inner_product(net, f"transform_{t}", f"h_conted_{t - 1}", f"W_hc_h_{t - 1}",
                           ["W_hc"], 4 * H, 2, weight_filler)
            _sum(net, f"gate_input_{t}", [f"W_hc_h_{t - 1}", f"W_xc_x_{t}"]
                 + (["W_xc_x_static"] if self.static else []), f"gate_input_{t}")
            _layer(net, "LSTMUnit", f"unit_{t}", [f"c_{t - 1}", f"gate_input_{t}", f"cont_{t}"],
                   [f"c_{t}", f"h_{t}"])
            concat.bottom.append(f"h_{t}")
        _layer(net, "Split", "", [f"c_{self.T}"], ["c_T"])
        net.layer.add().CopyFrom(concat)


def _scale_by_cont(net, h, cont):
    """h_conted = cont * h: a zero cont starts a new sequence."""
    lp = _layer(net, "Scale", h.replace("h_", "h_conted_", 1), [h, cont],
                [h.replace("h_", "h_conted_", 1)])
    lp.scale_param.axis = 0


def _sum(net, name, bottoms, top):
    lp = _layer(net, "Eltwise", name, bottoms, [top])
    lp.eltwise_param.operation = caffe_pb2.EltwiseParameter.SUM


class _CaffeLinesOnly:
    """The unrolled net's logger: Caffe's lines, without the engine's own numerics line
    (which the outer net has already logged), so the set-up log is Caffe's line for line."""

    def __init__(self, log):
        self.log = log

    def write(self, severity, where, message):
        if where != "net.cpp:0":
            self.log.write(severity, where, message)

    def info(self, where, message):
        self.write("I", where, message)

    def warning(self, where, message):
        self.write("W", where, message)

    def error(self, where, message):
        self.write("E", where, message)
