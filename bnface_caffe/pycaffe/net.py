"""caffe.Net on the engine: pycaffe's Net (pycaffe.py and _caffe.cpp) over an engine Net.

Built as pycaffe builds it: `Net(network_file, phase, level=0, stages=None, weights=None)` or
the old `Net(network_file, weights, phase)` (with its deprecation warnings); the prototxt is
read, its NetState set (phase, level and stages as given), and the engine's Net set up (the
same log lines as Caffe's). The names and their order are Caffe's: `blobs` in the order the
net creates them (split blobs included, an anonymous loss top as "(automatic)"), `params` by
layer for layers with blobs, `outputs` alphabetical, `inputs` the Input layers' tops.

Every blob is persistent memory shown as numpy arrays (engine/blob.py); a parameter blob is
the engine's own tensor (and its gradient), the one the solver updates, so net surgery through
`net.params[name][i].data` changes what the next forward computes. forward/backward run layer
by layer (layerwise.py); the solver's step runs the engine's whole-net pass and copies its
values back (solver.py).
"""
import contextlib
import os
from collections import OrderedDict

import numpy as np
import torch

from ..engine import net_weights
from ..engine.blob import Blob, BlobVec, Storage
from ..engine.net import Net as EngineNet
from ..engine.net_build import fold_batchnorm_scale
from ..errors import UserError, like
from ..formats import caffemodel, prototxt, pycaffe_log
from ..proto import caffe_pb2
from . import mode
from .layerwise import LayerRunner, layer_index


class Net:
    def __init__(self, *args, **kwargs):
        network_file, phase, level, stages, weights, legacy = _constructor_args(args, kwargs)
        log = mode.current_log()
        if legacy:
            pycaffe_log.deprecated_net_constructor(log, network_file, phase, weights)
            _check_file(weights)
        _check_file(network_file)
        param = prototxt.read_text(network_file, caffe_pb2.NetParameter)
        engine = EngineNet(param, phase=phase, stages=tuple(stages), level=level,
                           device=mode.device(), source=network_file, logger=log)
        self._attach(engine)
        if weights is not None:
            _check_file(weights)
            self.copy_from(weights)

    @classmethod
    def _wrap(cls, engine):
        """A pycaffe Net over an engine Net built elsewhere (a solver's nets)."""
        net = cls.__new__(cls)
        net._attach(engine)
        return net

    def _attach(self, engine):
        self._engine = engine
        _unfold_batchnorm_scale(engine.nodes)
        table, order = {}, []
        for node in engine.nodes:
            for name in node.tops:
                if name not in table:
                    table[name] = Blob(engine.shapes[name], engine.device)
                    order.append(name)
        self._table = table
        self._runner = LayerRunner(engine, table)
        self._param_storages = {}
        # the memory as Caffe's set-up leaves it: a loss top's diff holds its loss weight,
        # a constant DummyData top its constant, a Python layer's top what its set-up wrote
        for node in engine.nodes:
            for name, weight in zip(node.tops, node.loss_weights):
                if weight:
                    table[name]._diff.fill(weight)
        for i, constants in self._runner.constants.items():
            for j, value in constants.items():
                table[engine.nodes[i].tops[j]]._data.fill(value)
        for i, node in enumerate(engine.nodes):
            if self._runner.is_python(i):
                for j, (name, own) in enumerate(zip(node.tops, node.layer.top_blobs)):
                    if name not in node.bottoms[j:j + 1]:
                        table[name].set_data(own.data_tensor())
                node.layer.bind([table[b] for b in node.bottoms], [table[t] for t in node.tops])
                node.layer.bind_params()

        self._blob_names = [_shown(name) for name in order]
        self._blobs = [table[name] for name in order]
        self._layer_names = [node.layer.name for node in engine.nodes]
        self.layers = [node.layer.py if self._runner.is_python(i) else _LayerView(self, i)
                       for i, node in enumerate(engine.nodes)]
        index = {name: k for k, name in enumerate(order)}
        self._top_id_lists = [[index[t] for t in node.tops] for node in engine.nodes]
        self._bottom_id_lists = [[index[b] for b in node.bottoms] for node in engine.nodes]
        self._inputs = [index[name] for name, _, _ in engine.input_blobs]
        self._outputs = [index[name] for name in engine.output_names]
        weights = [0.0] * len(order)
        for node in engine.nodes:
            for name, weight in zip(node.tops, node.loss_weights):
                weights[index[name]] = float(weight)
        self._blob_loss_weights = weights

        self.blobs = OrderedDict(zip(self._blob_names, self._blobs))
        self.blob_loss_weights = OrderedDict(zip(self._blob_names, weights))
        self.layer_dict = OrderedDict(zip(self._layer_names, self.layers))
        self.params = OrderedDict((name, layer.blobs) for name, layer
                                  in zip(self._layer_names, self.layers) if len(layer.blobs))
        self.inputs = [self._blob_names[k] for k in self._inputs]
        self.outputs = [self._blob_names[k] for k in self._outputs]
        self.top_names = OrderedDict((name, [self._blob_names[k] for k in ids])
                                     for name, ids in zip(self._layer_names, self._top_id_lists))
        self.bottom_names = OrderedDict((name, [self._blob_names[k] for k in ids])
                                        for name, ids in zip(self._layer_names,
                                                             self._bottom_id_lists))

    def _top_ids(self, i):
        return list(self._top_id_lists[i])

    def _bottom_ids(self, i):
        return list(self._bottom_id_lists[i])

    @property
    def name(self):
        return self._engine.name

    # -- forward and backward -----------------------------------------------------------------
    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Forward from layer `start` to layer `end` (inclusive; names), with `kwargs` (input
        blob name -> array) copied into the input blobs first. Returns {blob: data} for the
        outputs (or `end`'s tops) and `blobs`."""
        blobs = list(blobs or [])
        start_ind = layer_index(self._layer_names, start, "forward(start=...)") \
            if start is not None else 0
        if end is not None:
            end_ind = layer_index(self._layer_names, end, "forward(end=...)")
            wanted = set(self.top_names[end] + blobs)
        else:
            end_ind = len(self.layers) - 1
            wanted = set(self.outputs + blobs)
        self._check_names(wanted, "forward(blobs=...)")
        self._put_arguments(kwargs, self.inputs, "data", "forward", "Input",
                            "input blob arguments", "inputs")
        self._forward(start_ind, end_ind)
        return {name: self.blobs[name].data for name in wanted}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Backward from layer `start` down to layer `end` (inclusive; names), with `kwargs`
        (output blob name -> array) copied into the output blobs' diffs first. Returns
        {blob: diff} for the inputs (or `end`'s bottoms) and `diffs`."""
        diffs = list(diffs or [])
        start_ind = layer_index(self._layer_names, start, "backward(start=...)") \
            if start is not None else len(self.layers) - 1
        if end is not None:
            end_ind = layer_index(self._layer_names, end, "backward(end=...)")
            wanted = set(self.bottom_names[end] + diffs)
        else:
            end_ind = 0
            wanted = set(self.inputs + diffs)
        self._check_names(wanted, "backward(diffs=...)")
        self._put_arguments(kwargs, self.outputs, "diff", "backward", "Diff",
                            "top diff arguments", "outputs")
        self._backward(start_ind, end_ind)
        return {name: self.blobs[name].diff for name in wanted}

    def _put_arguments(self, kwargs, names, field, what, noun, arguments, kind):
        """forward(**inputs) / backward(**diffs): exactly the net's `names`, each copied in."""
        if not kwargs:
            return
        if set(kwargs) != set(names):
            raise like(Exception, f"{what}(): {arguments} ({', '.join(sorted(kwargs))}) do not "
                                  f"match the net's {kind} ({', '.join(names) or 'none'})")
        for name, array in kwargs.items():
            self._put(name, array, field, what, noun)

    def _put(self, name, array, field, what, noun):
        blob = self.blobs[name]
        array = np.asarray(array)
        if array.ndim == 0 or array.shape[0] != blob.shape[0]:
            raise like(Exception, f"{what}(): {noun} is not batch sized: '{name}' got shape "
                                  f"{tuple(array.shape)}, the blob is {tuple(blob.shape)} (reshape "
                                  f"the blob first: net.blobs['{name}'].reshape(...))")
        try:
            getattr(blob, field)[...] = array
        except ValueError:
            raise like(ValueError, f"{what}(): '{name}' got an array of shape {tuple(array.shape)}; "
                                   f"the blob is {tuple(blob.shape)} (reshape the blob first: "
                                   f"net.blobs['{name}'].reshape(...), then net.reshape())") from None

    def _check_names(self, names, what):
        unknown = sorted(n for n in names if n not in self.blobs)
        if unknown:
            shown = ", ".join(self._blob_names[:20]) + (" ..." if len(self._blob_names) > 20 else "")
            raise like(KeyError, f"{what}: the net has no blob named '{unknown[0]}'; its blobs are "
                                 f"{shown}")

    def _forward(self, start, end):
        """Net::ForwardFromTo(start, end) by layer index; returns the loss."""
        n = len(self.layers)
        if start < 0 or end >= n:
            raise like(IndexError, f"_forward({start}, {end}): layer indices go from 0 to {n - 1}")
        with self._computing():
            return self._runner.forward(start, end)

    def _backward(self, start, end):
        """Net::BackwardFromTo(start, end) by layer index (start >= end)."""
        n = len(self.layers)
        if end < 0 or start >= n:
            raise like(IndexError, f"_backward({start}, {end}): layer indices go from 0 to {n - 1}")
        with self._computing():
            self._runner.backward(start, end)

    def reshape(self):
        """Net::Reshape: every layer reshapes to its bottoms' current shapes."""
        with self._computing():
            self._runner.reshape_all()

    def clear_param_diffs(self):
        with self._computing():
            self._engine.clear_param_diffs()

    # -- whole batches ------------------------------------------------------------------------
    def forward_all(self, blobs=None, **kwargs):
        """forward() over arrays of any length, one batch at a time (the last one padded
        with zeros, the padding dropped from the results)."""
        if not kwargs:
            raise UserError("forward_all(): give the inputs as keyword arguments "
                            f"({', '.join(f'{n}=array' for n in self.inputs) or 'the net has no inputs'})")
        wanted = set(self.outputs + list(blobs or []))
        collected = {name: [] for name in wanted}
        for batch in self._batch(kwargs):
            outs = self.forward(blobs=blobs, **batch)
            for name, value in outs.items():
                collected[name].extend(value.copy())
        return _trim_padding({name: np.asarray(v) for name, v in collected.items()}, kwargs)

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward() and backward() over arrays of any length, batch by batch: inputs from
        the net's inputs in kwargs, top diffs from its outputs in kwargs."""
        outs = {name: [] for name in set(self.outputs + list(blobs or []))}
        grads = {name: [] for name in set(self.inputs + list(diffs or []))}
        forward_batches = self._batch({k: kwargs[k] for k in self.inputs if k in kwargs})
        backward_batches = self._batch({k: kwargs[k] for k in self.outputs if k in kwargs})
        while True:
            fb = next(forward_batches, None)
            bb = next(backward_batches, None)
            if fb is None and bb is None:
                break
            for name, value in self.forward(blobs=blobs, **(fb or {})).items():
                outs[name].extend(value.copy())
            for name, value in self.backward(diffs=diffs, **(bb or {})).items():
                grads[name].extend(value.copy())
        outs = {name: np.asarray(v) for name, v in outs.items()}
        grads = {name: np.asarray(v) for name, v in grads.items()}
        return _trim_padding(outs, kwargs), _trim_padding(grads, kwargs)

    def _batch(self, arrays):
        """{name: array} -> batches of the net's batch size (its first blob's first axis)."""
        if not arrays:
            return
        num = len(next(iter(arrays.values())))
        batch_size = self._blobs[0].shape[0]
        for i in range(0, num - num % batch_size, batch_size):
            yield {name: arrays[name][i:i + batch_size] for name in arrays}
        rest = num % batch_size
        if rest:
            yield {name: np.concatenate([arrays[name][-rest:],
                                         np.zeros((batch_size - rest,) + arrays[name].shape[1:])])
                   for name in arrays}

    # -- weights ------------------------------------------------------------------------------
    def copy_from(self, path):
        """Net::CopyTrainedLayersFrom: a .caffemodel's blobs copied by layer name."""
        with self._computing():
            self._engine.copy_trained_layers_from_file(path)

    def share_with(self, other):
        """Net::ShareTrainedLayersWith: same-named layers compute with `other`'s blobs."""
        with self._computing():
            self._engine.share_trained_layers_with(other._engine)
            self._after_sharing()

    def _after_sharing(self):
        self._runner.graphs.clear()
        self._param_storages.clear()
        for i, node in enumerate(self._engine.nodes):
            if self._runner.is_python(i):
                node.layer.bind_params()

    def save(self, path):
        """Net::ToProto (without diffs) written as a binary .caffemodel."""
        with self._computing():
            caffemodel.write(self._engine.to_proto(), str(path))

    def save_hdf5(self, path):
        writer = getattr(net_weights, "to_hdf5", None)
        if writer is None:
            raise UserError(f"net.save_hdf5({path!r}): HDF5 weights are not supported by this "
                            "bnface-caffe; use net.save(...) (.caffemodel)")
        with self._computing():
            writer(self._engine, str(path))

    def load_hdf5(self, path):
        reader = getattr(net_weights, "copy_trained_layers_hdf5", None)
        if reader is None:
            raise UserError(f"net.load_hdf5({path!r}): HDF5 weights are not supported by this "
                            "bnface-caffe; use net.copy_from(...) with a .caffemodel")
        with self._computing():
            reader(self._engine, str(path))

    # -- MemoryData ---------------------------------------------------------------------------
    def set_input_arrays(self, data, labels):
        """Arrays for the MemoryData layer that must be the net's first layer."""
        labels = np.asarray(labels)
        if labels.ndim == 1:
            labels = np.ascontiguousarray(labels[:, np.newaxis, np.newaxis, np.newaxis])
        return self._set_input_arrays(data, labels)

    def _set_input_arrays(self, data, labels):
        first = self._engine.nodes[0].layer if self._engine.nodes else None
        if first is None or first.type != "MemoryData" or not hasattr(first, "set_input_arrays"):
            raise like(RuntimeError, "set_input_arrays may only be called if the first layer is a "
                                     "MemoryData layer (this net's is "
                                     f"{first.type if first else 'none'})")
        first.set_input_arrays(data, labels)

    # -- callbacks ----------------------------------------------------------------------------
    def before_forward(self, callback):
        self._runner.callbacks["before_forward"].append(callback)

    def after_forward(self, callback):
        self._runner.callbacks["after_forward"].append(callback)

    def before_backward(self, callback):
        self._runner.callbacks["before_backward"].append(callback)

    def after_backward(self, callback):
        self._runner.callbacks["after_backward"].append(callback)

    # -- the engine's memory and ours ---------------------------------------------------------
    def _param_storage(self, tensor):
        """The Storage over a parameter tensor (kept, for a GPU's host copy)."""
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.device)
        storage = self._param_storages.get(key)
        if storage is None:
            storage = self._param_storages[key] = Storage(adopt=tensor)
        return storage

    def _host_copies(self):
        storages = list(self._param_storages.values())
        for layer in self.layers:
            if not isinstance(layer, _LayerView):
                for blob in layer.blobs:
                    storages += [blob._data, blob._diff]
        return storages

    @contextlib.contextmanager
    def _computing(self):
        """The engine computes: parameters written through .data/.diff go to the device
        first; afterwards the device holds the newest values."""
        storages = self._host_copies()
        for storage in storages:
            storage.push()
        try:
            yield
        finally:
            for storage in storages:
                storage.written()

    @contextlib.contextmanager
    def _engine_pass(self):
        """The engine runs the whole net (solver.step): it reads the blobs Caffe's layers leave
        alone; afterwards every blob holds the last pass's values."""
        if any(self._runner.callbacks.values()):
            raise UserError("solver.step()/solve(): the net has before_/after_forward or "
                            "backward callbacks; they run in net.forward()/backward(), but the "
                            "solver runs the whole net at once: not supported")
        with self._computing():
            if self._runner.sources_reshaped():
                self._runner.reshape_all()
            fold_batchnorm_scale(self._engine.nodes)   # what tools/train.py computes, bit for bit
            try:
                yield
            finally:
                _unfold_batchnorm_scale(self._engine.nodes)
                self._runner.pull()


class _LayerView:
    """net.layers[i] for an engine layer: its type and its parameter blobs."""

    def __init__(self, net, index):
        self._net, self._index = net, index
        layer = net._engine.nodes[index].layer
        self.blobs = BlobVec(_ParamBlob(net, index, j) for j in range(len(layer.blobs)))

    @property
    def type(self):
        return self._net._engine.nodes[self._index].layer.type

    def __repr__(self):
        return f"<Layer {self._net._layer_names[self._index]} ({self.type})>"


class _ParamBlob(Blob):
    """A layer's parameter blob: the engine tensor the layer computes with (data) and the
    gradient the solver reads (diff), looked up anew each time (sharing swaps them)."""

    def __init__(self, net, node, index):   # noqa: super().__init__ not called: no memory of its own
        self._net, self._node, self._index = net, node, index

    def _tensor(self):
        return self._net._engine.nodes[self._node].layer.blobs[self._index]

    @property
    def _data(self):
        return self._net._param_storage(self._tensor())

    @property
    def _diff(self):
        tensor = self._tensor()
        param = self._net._runner.param_of(tensor)
        if param is None:
            return Storage(adopt=torch.zeros_like(tensor.detach()))
        else:
            diff = param.diff if tuple(param.diff.shape) == tuple(tensor.shape) \
                else param.diff.view(tensor.shape)
        return self._net._param_storage(diff)

    def reshape(self, *shape):
        raise UserError(f"layer '{self._net._layer_names[self._node]}' param {self._index}: "
                        "reshaping a parameter blob is not supported (its layer owns its shape)")


def _constructor_args(args, kwargs):
    """(network_file, phase, level, stages, weights, legacy) from either constructor."""
    if len(args) == 3 and not kwargs and isinstance(args[1], (str, bytes, os.PathLike)):
        network_file, weights, phase = args
        legacy, level, stages = True, 0, ()
    else:
        names = ("network_file", "phase", "level", "stages", "weights")
        if len(args) > len(names):
            raise like(TypeError, "caffe.Net(network_file, phase, level=0, stages=None, "
                                  f"weights=None): too many arguments ({len(args)})")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names or key in given:
                raise like(TypeError, f"caffe.Net(): unexpected or repeated argument '{key}'; "
                                      "it takes (network_file, phase, level=0, stages=None, "
                                      "weights=None)")
            given[key] = value
        if "network_file" not in given or "phase" not in given:
            raise like(TypeError, "caffe.Net() needs the network file and the phase: "
                                  "caffe.Net('net.prototxt', caffe.TEST[, weights='w.caffemodel'])")
        network_file, phase = given["network_file"], given["phase"]
        level, stages = given.get("level", 0), given.get("stages") or ()
        weights, legacy = given.get("weights"), False
        if isinstance(stages, str):
            raise like(TypeError, f"caffe.Net(stages={stages!r}): give a list of stage names")
    if phase not in (caffe_pb2.TRAIN, caffe_pb2.TEST):
        raise like(TypeError, f"caffe.Net(): phase must be caffe.TRAIN or caffe.TEST, got {phase!r}")
    return (os.fspath(network_file), int(phase), int(level), [str(s) for s in stages],
            None if weights is None else os.fspath(weights), legacy)


def _check_file(path):
    """pycaffe's CheckFile: the file must open."""
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise like(RuntimeError, f"Could not open file {path} ({err.strerror})") from None


def _shown(name):
    """Caffe names an anonymous loss top "(automatic)"; the engine numbers them."""
    return "(automatic)" if name.startswith("(automatic") else name


def _trim_padding(results, inputs):
    if not results or not inputs:
        return results
    pad = len(next(iter(results.values()))) - len(next(iter(inputs.values())))
    if pad > 0:
        results = {name: value[:-pad] for name, value in results.items()}
    return results


def _unfold_batchnorm_scale(nodes):
    """The engine lets a BatchNorm apply the following in-place Scale itself (speed; the last
    bits differ); layer by layer, the BatchNorm's top must hold what Caffe's does, so each
    computes its own there. The solver's whole-net pass folds them again (_engine_pass)."""
    for node in nodes:
        scale = getattr(node.layer, "scale_layer", None)
        if scale is not None:
            scale.folded = False
            node.layer.scale_layer = None
