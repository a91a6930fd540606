"""Input (input_layer.cpp) and Data (data_layer.cpp) layers.

Input: tops shaped by input_param.shape (given once for all tops, once per top,
or not at all); the net's callers set their values (Net.set_input). Data: reads
Datums from an LMDB strictly in key order through engine.data_reader.DatumReader,
wraps at the end, applies the DataTransformer, and outputs data [N, C, h, w] and
label [N] as float blobs. A background thread prefetches `prefetch` batches like
Caffe's (read, transformed, and for a GPU page-locked, all off the main thread); the reader
is opened and used only inside that thread (LMDB read transactions belong to the thread that
made them). The layer knows where the next
batch it will output begins (`resume_state`), which a resumed run restores.
"""
import os
import queue
import threading

import numpy as np
import torch

from ...errors import UserError
from ...proto import caffe_pb2
from ...shapes import shape_string
from ..transform import Transformer
from .base import Layer, register


@register
class Input(Layer):
    type = "Input"
    bottoms = (0, 0)
    tops = (1, None)

    def setup(self, bottom_shapes):
        shapes = [tuple(int(d) for d in s.dim) for s in self.param.input_param.shape]
        n = len(self.param.top)
        if len(shapes) not in (0, 1, n):
            raise self.error(f"give input_param shape once, once per top ({n}), or not at all; "
                             f"got {len(shapes)}")
        if any(d < 0 for s in shapes for d in s):
            raise self.error(f"input shapes must not be negative: {shapes}")
        if not shapes:
            raise self.error("input_param gives no shape; add input_param { shape { dim: N "
                             "dim: C dim: H dim: W } }")
        if len(shapes) == 1:
            shapes = shapes * n
        self.shapes = shapes
        self.values = [None] * n

    def reshape(self, bottom_shapes):
        return list(self.shapes)

    def set_shape(self, index, shape):
        self.shapes[index] = tuple(shape)
        self.values[index] = None

    def forward(self, bottoms):
        tops = []
        for i, shape in enumerate(self.shapes):
            if self.values[i] is None:  # Caffe's blob memory starts zeroed
                self.values[i] = torch.zeros(shape, device=self.device)
            tops.append(self.values[i])
        return tops


@register
class Data(Layer):
    type = "Data"
    bottoms = (0, 0)
    tops = (1, 2)

    rank = 0          # set by Net for multi-GPU training: every world_size-th record
    world_size = 1

    def open(self):
        dp = self.param.data_param
        where = f"layer '{self.name}' (Data)"
        if not dp.source:
            raise self.error("data_param { source: ... } is required (the LMDB folder)")
        if dp.batch_size <= 0:
            raise self.error("data_param { batch_size: N } must be > 0")
        if dp.backend != caffe_pb2.DataParameter.LMDB:
            if not os.path.exists(os.path.join(dp.source, "data.mdb")):
                raise self.error(f"backend LEVELDB is not supported (source {dp.source}); "
                                 "build an LMDB and set data_param { backend: LMDB }")
            self.log.warning("data_layer.cpp:0", f"{where}: backend is LEVELDB (Caffe's default) but "
                        f"{dp.source} is an LMDB; reading it as LMDB")
        self.batch_size = int(dp.batch_size)
        self.pinned = str(self.device).startswith("cuda")
        self.prefetcher = _Prefetcher(dp.source, self.rank, self.world_size, self.batch_size,
                                      max(1, int(dp.prefetch)), self.log, pin=self.pinned)
        self.datum_shape = self.prefetcher.datum_shape()
        self.log.info("db_lmdb.cpp:35", f"Opened lmdb {dp.source}")

    def setup(self, bottom_shapes):
        where = f"layer '{self.name}' (Data)"
        self.transformer = Transformer(self.param.transform_param, self.phase, where,
                                       logger=self.log)
        c, h, w = self.transformer.output_shape(self.datum_shape)
        self.prefetcher.start(self.transformer)
        self.top_shape = (self.batch_size, c, h, w)
        self.log.info("data_layer.cpp:45", "output data size: "
                 + ",".join(str(d) for d in self.top_shape))

    def reshape(self, bottom_shapes):
        tops = [self.top_shape]
        if len(self.param.top) > 1:
            tops.append((self.batch_size,))
        return tops

    def close(self):
        self.prefetcher.close()

    def resume_state(self):
        """Where the next batch begins and the Transformer's RNG then (the resume sidecar)."""
        return self.prefetcher.current_position()

    def restore_resume_state(self, state):
        self.prefetcher.seek(state)

    def forward(self, bottoms):
        data, label = self.prefetcher.next()
        if data.shape[1:] != self.top_shape[1:]:
            from ..data_reader import BadRecord
            raise BadRecord(f"layer '{self.name}' (Data): a batch has shape "
                            f"{shape_string(tuple(data.shape))}, the layer was set up for "
                            f"{shape_string(self.top_shape)}; the LMDB's records differ in size")
        # pinned by the prefetch thread for a GPU: the copy is asynchronous
        tops = [data.to(self.device, non_blocking=self.pinned)]
        if len(self.param.top) > 1:
            tops.append(label.to(self.device, non_blocking=self.pinned))
        return tops


class _Prefetcher:
    """A daemon thread owning the DatumReader: fills a queue with transformed batches.

    The thread opens the reader at once (set-up needs the datum shape) but reads batches only
    from the first `next()` or a `seek()`, so a resumed run chooses where reading starts
    before any record is read. Each batch travels with the position after it (records
    consumed, next key, the Transformer's RNG state) and with the log lines its reading
    caused, which are written when the net takes the batch: `position` and the log then
    follow the batches the net consumed, not how far the thread has read ahead.
    """

    def __init__(self, source, rank, world_size, batch_size, depth, log, pin=False):
        self.args = (source, rank, world_size, batch_size)
        self.depth, self.log = depth, log
        self.pin = pin       # page-locked batches (for a GPU), made here, off the main thread
        self.transformer = None
        self.position = None
        self.closed = False
        self._spawn()

    def _spawn(self):
        self.queue = queue.Queue(maxsize=self.depth)
        self.shape_box = queue.Queue(maxsize=1)
        self.go_box = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.started = False
        self.thread = threading.Thread(target=self._run, name=f"prefetch:{self.args[0]}",
                                       args=(self.queue, self.shape_box, self.go_box, self.stop),
                                       daemon=True)
        self.thread.start()

    def start(self, transformer):
        """The layer is set up (Caffe starts its InternalThread after SetUp)."""
        self.transformer = transformer

    def datum_shape(self):
        kind, value = self.shape_box.get()
        if kind == "error":
            raise value
        return value

    def _go(self, position=None):
        if position is None:
            position = {"offset": 0, "next_key": None,
                        "transform_rng": self.transformer.rng.bit_generator.state}
        self.position = position
        self.started = True
        self.go_box.put((self.transformer, position))

    def current_position(self):
        """Where the next batch the net takes begins (before any batch: the first record)."""
        if not self.started:
            return {"offset": 0, "next_key": None,
                    "transform_rng": self.transformer.rng.bit_generator.state}
        return self.position

    def seek(self, position):
        """Read on from `position` (a `current_position()` of an earlier run)."""
        if self.started:
            self._stop()
            self._spawn()
            self.datum_shape()
        self.transformer.rng.bit_generator.state = position["transform_rng"]
        self._go(position)

    def close(self):
        """Stop the thread (it may be waiting to hand over a batch) and free the reader."""
        self._stop()
        self.closed = True

    def _stop(self):
        self.stop.set()
        if not self.started and self.go_box.empty():
            self.go_box.put(None)
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass

    def next(self):
        if self.closed:
            raise UserError(f"{self.args[0]}: the Data layer reading it was closed "
                            "(Net.close()); build the net again to read more")
        if not self.started:
            self._go()
        kind, value, after, lines = self.queue.get()
        for severity, where, message in lines:
            self.log.write(severity, where, message)
        if kind == "error":
            self.queue.put((kind, value, None, []))  # every later call fails the same way
            raise value
        self.position = after
        return value

    def _run(self, out, shape_box, go_box, stop):
        source, rank, world_size, batch_size = self.args
        lines = _LineBuffer()
        try:
            from ..data_reader import DatumReader
            reader = DatumReader(source, rank=rank, world_size=world_size, log=lines)
            shape_box.put(("ok", tuple(int(d) for d in reader.datum_shape)))
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            shape_box.put(("error", _as_user_error(err, source)))
            return
        try:
            go = go_box.get()
            if go is None:
                return
            transformer, position = go
            if position["offset"] or position.get("next_key") is not None:
                reader.seek(int(position["offset"]), position.get("next_key"))
            while not stop.is_set():
                images, labels = reader.next_batch(batch_size)
                batch = (torch.from_numpy(np.ascontiguousarray(transformer(images))),
                         torch.from_numpy(np.asarray(labels, dtype=np.float32)))
                if self.pin:
                    batch = tuple(t.pin_memory() for t in batch)
                offset, next_key = reader.position()
                after = {"offset": offset, "next_key": next_key,
                         "transform_rng": transformer.rng.bit_generator.state}
                out.put(("ok", batch, after, lines.take()))
        except BaseException as err:  # noqa: BLE001
            out.put(("error", _as_bad_record(err, source), None, lines.take()))
        finally:
            reader.close()


class _LineBuffer:
    """A logger for the prefetch thread: keeps lines until the batch they belong to is taken."""

    def __init__(self):
        self.lines = []

    def write(self, severity, where, message):
        self.lines.append((severity, where, message))

    def info(self, where, message):
        self.write("I", where, message)

    def warning(self, where, message):
        self.write("W", where, message)

    def take(self):
        lines, self.lines = self.lines, []
        return lines


def _as_bad_record(err, source):
    """Anything wrong with a batch's records (decoding, sizes, the transform) is a BadRecord."""
    from ..data_reader import BadRecord
    if isinstance(err, UserError) and not isinstance(err, BadRecord):
        return BadRecord(str(err))
    return _as_user_error(err, source)


def _as_user_error(err, source):
    if isinstance(err, UserError):
        return err
    if isinstance(err, ImportError):
        return UserError(f"{source}: cannot read LMDBs, bnface_caffe.engine.data_reader is missing ({err})")
    return err
