"""Bring old net definitions up to date, as Caffe's UpgradeNetAsNeeded does.

In Caffe's order: V0 (`layers { layer { type: "conv" ... } }`, padding layers
folded into the next conv/pool) -> V1; V1 data-layer transformation fields ->
transform_param; V1 (`layers { type: CONVOLUTION }`, blobs_lr, weight_decay) ->
`layer { type: "Convolution" }` with ParamSpecs; the deprecated input /
input_shape / input_dim fields -> an Input layer named "input" at the front;
BatchNorm layers declaring exactly three param{} -> lr_mult and decay_mult 0.
Applies to prototxts and to caffemodels alike.
"""
from ..errors import UserError
from .glog import Glog
from ..proto import caffe_pb2

V1 = caffe_pb2.V1LayerParameter

V1_TYPE_NAMES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

V0_TYPES = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}

# V0 field -> {v0 type: (V1 sub-message, field)}; None as the message means the
# field goes to transform_param for every type.
V0_FIELDS = {
    "num_output": {"conv": ("convolution_param", "num_output"),
                   "innerproduct": ("inner_product_param", "num_output")},
    "biasterm": {"conv": ("convolution_param", "bias_term"),
                 "innerproduct": ("inner_product_param", "bias_term")},
    "weight_filler": {"conv": ("convolution_param", "weight_filler"),
                      "innerproduct": ("inner_product_param", "weight_filler")},
    "bias_filler": {"conv": ("convolution_param", "bias_filler"),
                    "innerproduct": ("inner_product_param", "bias_filler")},
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"),
                   "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {"data": ("data_param", "source"), "hdf5_data": ("hdf5_data_param", "source"),
               "images": ("image_data_param", "source"),
               "window_data": ("window_data_param", "source"),
               "infogain_loss": ("infogain_loss_param", "source")},
    "batchsize": {"data": ("data_param", "batch_size"),
                  "hdf5_data": ("hdf5_data_param", "batch_size"),
                  "images": ("image_data_param", "batch_size"),
                  "window_data": ("window_data_param", "batch_size")},
    "rand_skip": {"data": ("data_param", "rand_skip"), "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode")},
    "hdf5_output_param": {"hdf5_output": (None, "hdf5_output_param")},
}
V0_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size",
                "mirror": "mirror"}


def upgrade_net(param, source="<net>", logger=None):
    """A copy of NetParameter `param` in the current format (the input is not changed)."""
    log = logger if logger is not None else Glog()
    net = caffe_pb2.NetParameter()
    net.CopyFrom(param)
    if any(layer.HasField("layer") for layer in net.layers):
        log.info("upgrade_proto.cpp:28", "Attempting to upgrade input file specified using "
                 f"deprecated V0LayerParameter: {source}")
        net = _v0_to_v1(net, source, log)
        log.info("upgrade_proto.cpp:36", "Successfully upgraded file specified using deprecated "
                 "V0LayerParameter")
        log.warning("upgrade_proto.cpp:39", "Note that future Caffe releases will not support "
                    "V0NetParameter; use ./build/tools/upgrade_net_proto_text for prototxt and "
                    "./build/tools/upgrade_net_proto_binary for model weights upgrade this and "
                    "any other net protos to the new format.")
    if _needs_data_upgrade(net):
        log.info("upgrade_proto.cpp:46", "Attempting to upgrade input file specified using "
                 f"deprecated transformation parameters: {source}")
        _upgrade_data_transformation(net)
        log.info("upgrade_proto.cpp:49", "Successfully upgraded file specified using deprecated "
                 "data transformation parameters.")
        log.warning("upgrade_proto.cpp:51", "Note that future Caffe releases will only support "
                    "transform_param messages for transformation fields.")
    if len(net.layers):
        log.info("upgrade_proto.cpp:55", "Attempting to upgrade input file specified using "
                 f"deprecated V1LayerParameter: {source}")
        net = _v1_to_v2(net, source, log)
        log.info("upgrade_proto.cpp:63", "Successfully upgraded file specified using deprecated "
                 "V1LayerParameter")
    if len(net.input):
        log.info("upgrade_proto.cpp:69", "Attempting to upgrade input file specified using "
                 f"deprecated input fields: {source}")
        _upgrade_input(net, source)
        log.info("upgrade_proto.cpp:72", "Successfully upgraded file specified using deprecated "
                 "input fields.")
        log.warning("upgrade_proto.cpp:74", "Note that future Caffe releases will only support "
                    "input layers and not input fields.")
    if any(l.type == "BatchNorm" and len(l.param) == 3 for l in net.layer):
        log.info("upgrade_proto.cpp:79", "Attempting to upgrade batch norm layers using "
                 f"deprecated params: {source}")
        for layer in net.layer:
            if layer.type == "BatchNorm" and len(layer.param) == 3:
                for spec in layer.param:
                    spec.lr_mult = 0
                    spec.decay_mult = 0
        log.info("upgrade_proto.cpp:82", "Successfully upgraded batch norm layers using "
                 "deprecated params.")
    return net


def _v1_to_v2(net, source, log):
    if len(net.layer):
        raise UserError(f"{source}: the net mixes 'layer' and legacy 'layers' entries; rewrite the "
                        "'layers { type: ENUM }' entries as 'layer { type: \"Name\" }'")
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    out.ClearField("layers")
    for i, old in enumerate(net.layers):
        out.layer.append(_v1_layer(old, i, source, log))
    return out


def _v1_layer(old, index, source, log):
    new = caffe_pb2.LayerParameter()
    new.bottom.extend(old.bottom)
    new.top.extend(old.top)
    if old.HasField("name"):
        new.name = old.name
    new.include.extend(old.include)
    new.exclude.extend(old.exclude)
    if old.HasField("type"):
        enum_name = V1.LayerType.Name(old.type)
        new.type = V1_TYPE_NAMES.get(enum_name, "")
    new.blobs.extend(old.blobs)

    def spec(i):
        while len(new.param) <= i:
            new.param.add()
        return new.param[i]

    for i, name in enumerate(old.param):
        spec(i).name = name
    for i, mode in enumerate(old.blob_share_mode):
        spec(i).share_mode = mode  # STRICT/PERMISSIVE have the same numbers in both enums
    for i, lr in enumerate(old.blobs_lr):
        spec(i).lr_mult = lr
    for i, decay in enumerate(old.weight_decay):
        spec(i).decay_mult = decay
    new.loss_weight.extend(old.loss_weight)
    target_fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    for field, value in old.ListFields():
        if field.name.endswith("_param") and field.name in target_fields:
            getattr(new, field.name).CopyFrom(value)
    if old.HasField("layer"):
        log.error("upgrade_proto.cpp:0", "Input NetParameter has V0 layer -- ignoring.")
    return new


def _needs_data_upgrade(net):
    for layer in net.layers:
        for kind, field in ((V1.DATA, "data_param"), (V1.IMAGE_DATA, "image_data_param"),
                            (V1.WINDOW_DATA, "window_data_param")):
            if layer.type == kind:
                p = getattr(layer, field)
                if any(p.HasField(f) for f in ("scale", "mean_file", "crop_size", "mirror")):
                    return True
    return False


def _upgrade_data_transformation(net):
    for layer in net.layers:
        for kind, field in ((V1.DATA, "data_param"), (V1.IMAGE_DATA, "image_data_param"),
                            (V1.WINDOW_DATA, "window_data_param")):
            if layer.type != kind:
                continue
            p = getattr(layer, field)
            for f in ("scale", "mean_file", "crop_size", "mirror"):
                if p.HasField(f):
                    setattr(layer.transform_param, f, getattr(p, f))
                    p.ClearField(f)


def _upgrade_input(net, source):
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        if has_dim and len(net.input_dim) != 4 * len(net.input):
            raise UserError(f"{source}: {len(net.input)} input(s) need {4 * len(net.input)} "
                            f"input_dim values (4 each), found {len(net.input_dim)}")
        if has_shape and len(net.input_shape) != len(net.input):
            raise UserError(f"{source}: {len(net.input)} input(s) but {len(net.input_shape)} "
                            "input_shape entries; give one per input")
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for i, name in enumerate(net.input):
            layer.top.append(name)
            shape = layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i:4 * i + 4])
        layers = [layer] + list(net.layer)
        net.ClearField("layer")
        net.layer.extend(layers)
    # A legacy caffemodel may name inputs without shapes: dropping them is enough.
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")


def _v0_to_v1(net, source, log):
    """V0 -> V1: fold padding layers into the following conv/pool, then map fields."""
    last_producer = {name: -1 for name in net.input}
    kept = []
    for i, conn in enumerate(net.layers):
        v0 = conn.layer
        if v0.type != "padding":
            kept.append(_copy(conn))
        for j, blob in enumerate(conn.bottom):
            if blob not in last_producer:
                raise UserError(f"{source}: unknown blob input {blob} to layer {v0.name or i}")
            src = last_producer[blob]
            if src == -1 or net.layers[src].layer.type != "padding":
                continue
            pad_layer = net.layers[src]
            if v0.type not in ("conv", "pool") or len(conn.bottom) != 1 or \
                    len(pad_layer.bottom) != 1 or len(pad_layer.top) != 1:
                raise UserError(f"{source}: padding layer '{pad_layer.layer.name}' feeds layer "
                                f"'{v0.name}' ({v0.type}); only a single-input conv or pool may "
                                "follow a padding layer")
            kept[-1].layer.pad = pad_layer.layer.pad
            kept[-1].bottom[j] = pad_layer.bottom[0]
        for blob in conn.top:
            last_producer[blob] = i
    out = caffe_pb2.NetParameter()
    if net.HasField("name"):
        out.name = net.name
    for conn in kept:
        out.layers.append(_v0_layer(conn, source, log))
    out.input.extend(net.input)
    out.input_dim.extend(net.input_dim)
    if net.HasField("force_backward"):
        out.force_backward = net.force_backward
    return out


def _copy(msg):
    new = type(msg)()
    new.CopyFrom(msg)
    return new


def _v0_layer(conn, source, log):
    new = V1()
    new.bottom.extend(conn.bottom)
    new.top.extend(conn.top)
    if not conn.HasField("layer"):
        return new
    v0 = conn.layer
    kind = v0.type
    if v0.HasField("name"):
        new.name = v0.name
    if v0.HasField("type"):
        if kind not in V0_TYPES:
            raise UserError(f"{source}: unknown V0 layer type '{kind}' (layer '{v0.name}')")
        new.type = V1.LayerType.Value(V0_TYPES[kind])
    new.blobs.extend(v0.blobs)
    new.blobs_lr.extend(v0.blobs_lr)
    new.weight_decay.extend(v0.weight_decay)
    for field, value in v0.ListFields():
        name = field.name
        if name in V0_TRANSFORM:
            setattr(new.transform_param, V0_TRANSFORM[name], value)
            continue
        if name not in V0_FIELDS:
            continue
        target = V0_FIELDS[name].get(kind)
        if target is None:
            log.error("upgrade_proto.cpp:0", f"Unknown parameter {name} for layer type {kind}")
            continue
        message, sub = target
        if message is None:
            getattr(new, sub).CopyFrom(value)
            continue
        holder = getattr(new, message)
        dest = holder.DESCRIPTOR.fields_by_name[sub]
        if dest.is_repeated:
            getattr(holder, sub).append(value)
        elif dest.message_type is not None:
            getattr(holder, sub).CopyFrom(value)
        else:
            setattr(holder, sub, value)
    return new


def read_net(path, log=None):
    """A text net prototxt, upgraded: Caffe's ReadNetParamsFromTextFileOrDie."""
    from . import prototxt
    return upgrade_net(prototxt.read_text(path, caffe_pb2.NetParameter), path, log)
