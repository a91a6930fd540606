"""The paper's two face-recognition nets as Caffe NetParameters.

baseline ("original"): 4 blocks of two 3x3 convs (pad 1) + ReLU; 2x2/2 MAX pool after
blocks 1-3; 7x7 AVE pool after block 4 (-> 1x1xC); Dropout; InnerProduct; softmax.
bn: BatchNorm + Scale(bias) + ReLU after the first conv of each block; block 2 keeps
a single conv; no Dropout. `block2_convs` and `dropout` undo either change (the study's
ablations: which of the BN net's changes does what). The shapes only work out with Caffe's ceil-mode pooling:
50 -> 25 -> 13 -> 7 -> 1 (floor mode would give 50 -> 25 -> 12 -> 6).
"""
from dataclasses import dataclass

from .errors import UserError
from .paper import FINAL_POOL, INPUT_SIZE, NUM_CLASSES
from .proto import caffe_pb2
from .shapes import pool_output_size

DEFAULT_WIDTHS = (32, 64, 64, 128, 96, 192, 160, 320)   # ours: only the last, 320, is the paper's
DEFAULT_LMDB_DIR = "data/lmdb"


def spatial_sizes(input_size=INPUT_SIZE):
    """Side lengths after each pooling stage: [input, pool1, pool2, pool3, pool4]."""
    sizes = [input_size]
    for _ in range(3):
        sizes.append(pool_output_size(sizes[-1], 2, 2))
    if sizes[-1] < FINAL_POOL:
        raise UserError(f"input {input_size}x{input_size} gives {sizes[-1]}x{sizes[-1]} before the "
                        f"{FINAL_POOL}x{FINAL_POOL} average pool ({' -> '.join(map(str, sizes))}); "
                        f"the paper's nets need {INPUT_SIZE}x{INPUT_SIZE} (50 -> 25 -> 13 -> 7)")
    sizes.append(pool_output_size(sizes[-1], FINAL_POOL, 1))
    if sizes[-1] != 1:
        raise UserError(f"input {input_size}x{input_size} gives {sizes[-2]}x{sizes[-2]} before the "
                        f"{FINAL_POOL}x{FINAL_POOL} average pool, so the features are "
                        f"{sizes[-1]}x{sizes[-1]}, not 1x1; use a {INPUT_SIZE}x{INPUT_SIZE} input")
    return sizes


def parse_widths(text):
    """'32,64,...' -> tuple of 8 positive ints, or a UserError saying what is wrong."""
    try:
        widths = tuple(int(w) for w in str(text).split(","))
    except ValueError:
        raise UserError(f"--widths {text!r}: expected 8 comma-separated integers, "
                        f"e.g. {','.join(map(str, DEFAULT_WIDTHS))}") from None
    check_widths(widths)
    return widths


def check_widths(widths):
    if len(widths) != 8:
        raise UserError(f"--widths needs 8 conv widths (two per block), got {len(widths)}: "
                        f"{','.join(map(str, widths))}")
    bad = [w for w in widths if w <= 0]
    if bad:
        raise UserError(f"--widths must all be positive, got {','.join(map(str, widths))}")


@dataclass
class NetOptions:
    bn: bool = False
    num_classes: int = NUM_CLASSES
    widths: tuple = DEFAULT_WIDTHS
    input_size: int = INPUT_SIZE
    batch_size: int = 64
    test_batch_size: int = 100
    train_lmdb: str = f"{DEFAULT_LMDB_DIR}/train_lmdb"
    test_lmdb: str = f"{DEFAULT_LMDB_DIR}/test_lmdb"
    mean_file: str = f"{DEFAULT_LMDB_DIR}/mean.binaryproto"  # "" for none
    mean_value: float = None  # used instead of mean_file when set
    scale: float = 0.00390625  # 1/256, applied after the mean
    mirror: bool = False
    dropout: float = None  # None: 0.5 for baseline, none for bn; 0 disables
    block2_convs: int = None  # None: 2 for baseline, 1 for bn (the paper removed one)
    filler: str = "xavier"  # or "msra"
    deploy: bool = False


def build_net(opts):
    """NetParameter for the baseline or BN net, train_val or deploy."""
    check_widths(opts.widths)
    spatial_sizes(opts.input_size)
    if opts.num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {opts.num_classes}")
    for flag, value in (("--batch-size", opts.batch_size), ("--test-batch-size", opts.test_batch_size)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if not opts.scale > 0:
        raise UserError(f"--pixel-scale must be positive, got {opts.scale}")
    if opts.filler not in ("xavier", "msra"):
        raise UserError(f"--filler must be xavier or msra, got {opts.filler!r}")
    dropout = (0.0 if opts.bn else 0.5) if opts.dropout is None else opts.dropout
    if not 0 <= dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {dropout}")
    block2 = (1 if opts.bn else 2) if opts.block2_convs is None else opts.block2_convs
    if block2 not in (1, 2):
        raise UserError(f"--block2-convs must be 1 or 2, got {block2}")

    net = caffe_pb2.NetParameter(name="bnface_bn" if opts.bn else "bnface_baseline")
    if opts.deploy:
        _input_layer(net, opts.input_size)
    else:
        _data_layers(net, opts)
    top = "data"
    w = opts.widths
    # A single block-2 conv takes the block's output width (w[3]), so what follows is unchanged.
    blocks = [(1, [w[0], w[1]]), (2, [w[3]] if block2 == 1 else [w[2], w[3]]),
              (3, [w[4], w[5]]), (4, [w[6], w[7]])]
    for block, widths in blocks:
        for i, width in enumerate(widths):
            name = f"{block}_{i + 1}" if len(widths) > 1 else f"{block}"
            with_bn = opts.bn and i == 0
            top = _conv(net, f"conv{name}", top, width, opts.filler, bias=not with_bn)
            if with_bn:
                _batch_norm(net, name, top)
            _layer(net, f"relu{name}", "ReLU", [top], [top])
        if block < 4:
            top = _pool(net, f"pool{block}", top, caffe_pb2.PoolingParameter.MAX, 2, 2)
        else:
            top = _pool(net, f"pool{block}", top, caffe_pb2.PoolingParameter.AVE, FINAL_POOL, 1)
    if dropout > 0:
        layer = _layer(net, "drop", "Dropout", [top], [top])
        layer.dropout_param.dropout_ratio = dropout
    fc = _layer(net, "fc", "InnerProduct", [top], ["fc"])
    _learnable(fc, opts.filler)
    fc.inner_product_param.num_output = opts.num_classes
    _fill(fc.inner_product_param, opts.filler, bias=True)
    if opts.deploy:
        _layer(net, "prob", "Softmax", ["fc"], ["prob"])
    else:
        _layer(net, "loss", "SoftmaxWithLoss", ["fc", "label"], ["loss"])
        for name, k in (("accuracy", 1), ("accuracy_top5", 5)):
            acc = _layer(net, name, "Accuracy", ["fc", "label"], [name])
            acc.include.add(phase=caffe_pb2.TEST)
            if k != 1:
                acc.accuracy_param.top_k = k
    return net


def fed_by_input(train_net, batch, size=INPUT_SIZE):
    """The train net with its Data layers replaced by one Input layer of the same tops
    (data [batch, 1, size, size], label [batch]): a net that benchmarks and tests feed directly."""
    layers = [layer for layer in train_net.layer if layer.type != "Data"]
    del train_net.layer[:]
    data = train_net.layer.add(name="data", type="Input", top=["data", "label"])
    data.input_param.shape.add(dim=[batch, 1, size, size])
    data.input_param.shape.add(dim=[batch])
    train_net.layer.extend(layers)
    return train_net


def _layer(net, name, type_, bottom, top):
    return net.layer.add(name=name, type=type_, bottom=bottom, top=top)


def _input_layer(net, size):
    layer = _layer(net, "data", "Input", [], ["data"])
    layer.input_param.shape.add(dim=[1, 1, size, size])


def _data_layers(net, opts):
    for phase, source, batch in ((caffe_pb2.TRAIN, opts.train_lmdb, opts.batch_size),
                                 (caffe_pb2.TEST, opts.test_lmdb, opts.test_batch_size)):
        layer = _layer(net, "data", "Data", [], ["data", "label"])
        layer.include.add(phase=phase)
        t = layer.transform_param
        t.scale = opts.scale
        if opts.mirror and phase == caffe_pb2.TRAIN:
            t.mirror = True
        if opts.mean_value is not None:
            t.mean_value.append(opts.mean_value)
        elif opts.mean_file:
            t.mean_file = opts.mean_file
        layer.data_param.source = source
        layer.data_param.batch_size = batch
        layer.data_param.backend = caffe_pb2.DataParameter.LMDB  # Caffe's default is LEVELDB


def _learnable(layer, filler, bias=True):
    # The classic Caffe recipe: biases learn twice as fast and are not decayed.
    layer.param.add(lr_mult=1, decay_mult=1)
    if bias:
        layer.param.add(lr_mult=2, decay_mult=0)


def _fill(param, filler, bias):
    param.weight_filler.type = filler
    if bias:
        param.bias_filler.type = "constant"
        param.bias_filler.value = 0
    else:
        param.bias_term = False


def _conv(net, name, bottom, width, filler, bias):
    layer = _layer(net, name, "Convolution", [bottom], [name])
    _learnable(layer, filler, bias)
    p = layer.convolution_param
    p.num_output = width
    p.pad.append(1)
    p.kernel_size.append(3)
    p.stride.append(1)
    _fill(p, filler, bias)
    return name


def _batch_norm(net, suffix, top):
    bn = _layer(net, f"bn{suffix}", "BatchNorm", [top], [top])
    for _ in range(3):  # statistics, not parameters: old and new Caffe both leave them alone
        bn.param.add(lr_mult=0, decay_mult=0)
    scale = _layer(net, f"scale{suffix}", "Scale", [top], [top])
    scale.scale_param.bias_term = True


def _pool(net, name, bottom, method, kernel, stride):
    layer = _layer(net, name, "Pooling", [bottom], [name])
    layer.pooling_param.pool = method
    layer.pooling_param.kernel_size = kernel
    layer.pooling_param.stride = stride
    return name
