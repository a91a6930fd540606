"""Read Datum records for the Data layer: strictly in key order, wrapping around at the end.

Caffe's DataLayer keeps one LMDB cursor; each record it consumes increments an offset, and
with several solvers (GPUs) rank r keeps the records whose offset % world_size == r. After
the last record it logs "Restarting data prefetching from start." and seeks to the first.
"""
import numpy as np

from ..errors import UserError
from ..glog import log
from ..proto import caffe_pb2
from .datum import datum_array
from .lmdb_io import close_readonly, open_readonly

RESTART_WHERE = "data_layer.cpp:73"


class DatumReader:
    def __init__(self, source_path, rank=0, world_size=1):
        if not 0 <= rank < world_size:
            raise UserError(f"reader rank {rank} is outside 0..{world_size - 1}")
        self.source = str(source_path)
        self.rank, self.world_size = rank, world_size
        self.env = open_readonly(self.source)
        self.txn = self.cursor = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self):
        self.num_records = self.env.stat()["entries"]
        if self.num_records == 0:
            raise UserError(f"{self.source}: the LMDB holds no records")
        self.txn = self.env.begin(buffers=False)
        self.cursor = self.txn.cursor()
        self.cursor.first()
        self.offset = 0          # records consumed so far, across wraps (Caffe's offset_)
        self.restarts = 0
        self._datum = caffe_pb2.Datum()
        # Setup peeks at the first record for the shape without moving the cursor.
        first = self._parse(self.cursor.key(), self.cursor.value())
        self.datum_shape = tuple(datum_array(first, self._where(self.cursor.key())).shape)

    def __len__(self):
        return self.num_records

    def _where(self, key):
        return f"{self.source} record {key.decode(errors='replace')!r}"

    def _parse(self, key, value):
        try:
            self._datum.ParseFromString(value)
        except Exception:
            raise UserError(f"{self._where(key)}: not a serialized caffe.Datum "
                            f"({len(value)} bytes); is this a Caffe data LMDB?") from None
        return self._datum

    def _next(self):
        self.offset += 1
        if not self.cursor.next():
            self._restart()

    def _restart(self):
        if self.rank == 0:  # Caffe logs on the root solver only
            log.info(RESTART_WHERE, "Restarting data prefetching from start.")
        self.restarts += 1
        self.cursor.first()

    def next_records(self, n):
        """The next n (key, value) pairs this rank reads, advancing the cursor."""
        out = []
        cursor = self.cursor
        if self.world_size == 1:  # the hot path: no skipping, no per-record method calls
            for _ in range(n):
                out.append((cursor.key(), cursor.value()))
                self.offset += 1
                if not cursor.next():
                    self._restart()
            return out
        for _ in range(n):
            while self.offset % self.world_size != self.rank:
                self._next()
            out.append((cursor.key(), cursor.value()))
            self._next()
        return out

    def next_batch(self, n):
        """(images [n,C,H,W] uint8, or float32 for float_data records; labels int32 [n])."""
        records = self.next_records(n)
        first = self._parse(*records[0])
        if not first.encoded and first.data:
            return self._raw_batch(records, (first.channels, first.height, first.width))
        return self._generic_batch(records, np.empty(n, np.int32))

    def _raw_batch(self, records, shape):
        # Fast path: every record raw uint8 of the first one's size; join the bytes once.
        size = shape[0] * shape[1] * shape[2]
        chunks, labels = [], []
        datum = self._datum
        for key, value in records:
            try:
                datum.ParseFromString(value)
            except Exception:
                self._parse(key, value)  # raises the located UserError
            data = datum.data
            if len(data) != size or datum.encoded:
                if datum.encoded or not data:  # a mixed LMDB: take the slow path
                    return self._generic_batch(records, np.empty(len(records), np.int32))
                raise UserError(f"{self._where(key)}: {len(data)} data bytes, but the "
                                f"batch's first record has shape {shape} ({size} bytes)")
            chunks.append(data)
            labels.append(datum.label)
        images = np.frombuffer(b"".join(chunks), np.uint8).reshape((len(records),) + shape)
        return images, np.array(labels, np.int32)

    def _generic_batch(self, records, labels):
        # Encoded or float_data records, or a mix: decode one by one.
        arrays = []
        for i, (key, value) in enumerate(records):
            datum = self._parse(key, value)
            array = datum_array(datum, self._where(key))
            if arrays and array.shape != arrays[0].shape:
                raise UserError(f"{self._where(key)}: shape {array.shape} differs from the "
                                f"batch's first record {arrays[0].shape}")
            arrays.append(array)
            labels[i] = datum.label
        dtype = np.float32 if any(a.dtype != np.uint8 for a in arrays) else np.uint8
        return np.stack(arrays).astype(dtype, copy=False), labels

    def close(self):
        if self.env is not None:
            if self.cursor is not None:
                self.cursor.close()
            if self.txn is not None:
                self.txn.abort()
            close_readonly(self.env)
            self.env = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
