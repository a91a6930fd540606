"""Input (input_layer.cpp) and Data (data_layer.cpp) layers.

Input: tops shaped by input_param.shape (given once for all tops, once per top,
or not at all); the net's callers set their values (Net.set_input). Data: reads
Datums from an LMDB strictly in key order through data.reader.DatumReader,
wraps at the end, applies the DataTransformer, and outputs data [N, C, h, w] and
label [N] as float blobs. A background thread prefetches `prefetch` batches like
Caffe's (read, transformed, and for a GPU page-locked, all off the main thread); the reader
is opened and used only inside that thread (LMDB read transactions belong to the thread that
made them).
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

    def forward(self, bottoms):
        data, label = self.prefetcher.next()
        if data.shape[1:] != self.top_shape[1:]:
            raise self.error(f"a batch has shape {shape_string(tuple(data.shape))}, the layer was "
                             f"set up for {shape_string(self.top_shape)}; the LMDB's records differ "
                             "in size")
        # pinned by the prefetch thread for a GPU: the copy is asynchronous
        tops = [data.to(self.device, non_blocking=self.pinned)]
        if len(self.param.top) > 1:
            tops.append(label.to(self.device, non_blocking=self.pinned))
        return tops


class _Prefetcher:
    """A daemon thread owning the DatumReader: fills a queue with transformed batches."""

    def __init__(self, source, rank, world_size, batch_size, depth, log, pin=False):
        self.queue = queue.Queue(maxsize=depth)
        self.shape_box = queue.Queue(maxsize=1)
        self.transformer_box = queue.Queue(maxsize=1)
        self.args = (source, rank, world_size, batch_size)
        self.log = log
        self.pin = pin       # page-locked batches (for a GPU), made here, off the main thread
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=f"prefetch:{source}", daemon=True)
        self.thread.start()

    def start(self, transformer):
        """Batches start once the layer is set up (Caffe: InternalThread after SetUp)."""
        self.transformer_box.put(transformer)

    def datum_shape(self):
        kind, value = self.shape_box.get()
        if kind == "error":
            raise value
        return value

    def close(self):
        """Stop the thread (it may be waiting to hand over a batch) and free the reader."""
        self.stopped = True
        if self.transformer_box.empty():
            self.transformer_box.put(None)
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass

    def next(self):
        kind, value = self.queue.get()
        if kind == "error":
            self.queue.put((kind, value))  # every later call fails the same way
            raise value
        return value

    def _run(self):
        source, rank, world_size, batch_size = self.args
        try:
            from ..data_reader import DatumReader
            reader = DatumReader(source, rank=rank, world_size=world_size, log=self.log)
            self.shape_box.put(("ok", tuple(int(d) for d in reader.datum_shape)))
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self.shape_box.put(("error", _as_user_error(err, source)))
            return
        transformer = self.transformer_box.get()
        try:
            while not self.stopped:
                images, labels = reader.next_batch(batch_size)
                batch = (torch.from_numpy(np.ascontiguousarray(transformer(images))),
                         torch.from_numpy(np.asarray(labels, dtype=np.float32)))
                if self.pin:
                    batch = tuple(t.pin_memory() for t in batch)
                self.queue.put(("ok", batch))
        except BaseException as err:  # noqa: BLE001
            self.queue.put(("error", _as_user_error(err, source)))
        finally:
            reader.close()


def _as_user_error(err, source):
    if isinstance(err, UserError):
        return err
    if isinstance(err, ImportError):
        return UserError(f"{source}: cannot read LMDBs, bnface_caffe.engine.data_reader is missing ({err})")
    return err
