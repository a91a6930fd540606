"""caffe.net_spec: write nets as Python calls, get the NetParameter pycaffe would build.

    from bnface_caffe.pycaffe import layers as L, params as P, NetSpec
    n = NetSpec()
    n.data, n.label = L.Data(source="train_lmdb", backend=P.Data.LMDB, batch_size=64, ntop=2)
    n.ip = L.InnerProduct(n.data, num_output=10, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.ip, n.label)
    print(n.to_proto())

The rules are pycaffe's, so a generator written for it gives the same net here:
- `L.<Type>(*bottoms, **kwargs)` makes a layer of that type; `ntop=N` gives N tops (a tuple,
  or the layer itself for 0), `in_place=True` makes its tops its bottoms.
- A keyword naming a `*param` field (`param`, `include`, `convolution_param`, ...) goes on the
  layer; any other keyword goes into the type's own parameter message (`num_output` ->
  `inner_product_param.num_output`), or, when that message has no such field, on the layer
  (`loss_weight`, `name`, `top`, ...).
- Values: a dict fills a message, a list of dicts adds repeated messages, a list extends a
  repeated field, a single value for a repeated field is a one-item list.
- Names: tops assigned to a NetSpec take the attribute name; others are `<Type><k>`, counted
  per type in the order they are first named. A layer is named after its first top (a layer
  without tops gets its own `<Type><k>`). Layers come out bottoms first, in assignment order.
"""
from collections import Counter, OrderedDict

from ..proto import caffe_pb2


def _param_field_names():
    """{'Convolution': 'convolution', 'InnerProduct': 'inner_product', ...}: each
    LayerParameter field `<x>_param` keyed by its message type's name without `Parameter`
    (so `transform_param` is under 'Transformation', as in pycaffe)."""
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields
    return {f.message_type.name[:-len("Parameter")]: f.name[:-len("_param")]
            for f in fields
            if f.name.endswith("_param") and f.message_type is not None
            and f.message_type.name.endswith("Parameter")}


PARAM_FIELDS = _param_field_names()


def to_proto(*tops):
    """The NetParameter with every layer needed to compute `tops` (all names automatic)."""
    layers, counts = OrderedDict(), Counter()
    for top in tops:
        # pycaffe starts a fresh name table for each top; the counters are shared.
        top.fn._to_proto(layers, {}, counts)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


def assign_proto(proto, name, value):
    """Set field `name` of `proto` from a Python value (see the module's rules)."""
    field = getattr(proto, name)
    if hasattr(field, "extend") and not isinstance(value, list):
        value = [value]
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            for item in value:
                message = field.add()
                for key, sub in item.items():
                    assign_proto(message, key, sub)
        else:
            field.extend(value)
    elif isinstance(value, dict):
        for key, sub in value.items():
            assign_proto(field, key, sub)
    else:
        setattr(proto, name, value)


class Top:
    """One output blob of a layer function (`fn`), its `n`-th top."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def to_proto(self):
        return to_proto(self)

    def _to_proto(self, layers, names, counts):
        return self.fn._to_proto(layers, names, counts)


class Function:
    """A layer: its type, bottoms (Tops) and keyword parameters."""

    def __init__(self, type_name, inputs, params):
        for i, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                raise TypeError(f"{type_name} input {i} is not a Top (type is {type(bottom)})")
        self.type_name = type_name
        self.inputs = inputs
        self.params = params
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _auto_name(self, counts):
        counts[self.type_name] += 1
        return self.type_name + str(counts[self.type_name])

    def _top_name(self, top, names, counts):
        if top not in names:
            names[top] = top.fn._auto_name(counts)
        return names[top]

    def _layer_name(self, names, counts):
        if self not in names:
            names[self] = (self._top_name(self.tops[0], names, counts) if self.ntop > 0
                           else self._auto_name(counts))
        return names[self]

    def _to_proto(self, layers, names, counts):
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, counts)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = caffe_pb2.LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottoms)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            for top in self.tops:
                layer.top.append(self._top_name(top, names, counts))
        layer.name = self._layer_name(names, counts)
        for key, value in self.params.items():
            if key.endswith("param"):
                assign_proto(layer, key, value)
                continue
            try:
                own = getattr(layer, PARAM_FIELDS[self.type_name] + "_param")
                assign_proto(own, key, value)
            except (AttributeError, KeyError):
                assign_proto(layer, key, value)
        layers[self] = layer


class _NoSuchTop(KeyError, AttributeError):
    """NetSpec lookups of unassigned names: a KeyError as in pycaffe, and an AttributeError
    so that hasattr/getattr defaults work."""


class NetSpec:
    """Tops assigned as attributes (or items) are named after them; to_proto() builds every
    layer they need, in assignment order."""

    def __init__(self):
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)     # copy/pickle probes, not tops
        try:
            return self.tops[name]
        except KeyError:
            raise _NoSuchTop(name) from None

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        return self.__getattr__(item)

    def to_proto(self):
        names = {top: name for name, top in self.tops.items()}
        counts, layers = Counter(), OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, counts)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """`layers.Convolution(bottom, kernel_size=3)`: any attribute is a layer type."""

    def __getattr__(self, type_name):
        if type_name.startswith("__") and type_name.endswith("__"):
            raise AttributeError(type_name)

        def make_layer(*bottoms, **kwargs):
            fn = Function(type_name, bottoms, kwargs)
            if fn.ntop == 0:
                return fn
            return fn.tops[0] if fn.ntop == 1 else fn.tops
        return make_layer


class Parameters:
    """`params.Pooling.MAX`: the enum values of caffe_pb2.<Type>Parameter."""

    def __getattr__(self, type_name):
        if type_name.startswith("__") and type_name.endswith("__"):
            raise AttributeError(type_name)
        message = getattr(caffe_pb2, type_name + "Parameter")

        class EnumValues:
            def __getattr__(self, value_name):
                return getattr(message, value_name)
        return EnumValues()


layers = Layers()
params = Parameters()
