"""compute_image_mean: the element-wise mean of every record of an LMDB (the file itself is
formats/blobproto.py's mean.binaryproto).

Caffe sums into float32 then divides by the count; we sum exactly (int64 for uint8 data) and
divide in float32, which is the same number while count·255 < 2^24 and closer after that.
"""
import numpy as np

from ..errors import UserError
from ..formats.blobproto import write_mean_file
from ..formats.datum import datum_array, parse
from ..proto import caffe_pb2
from ..formats.lmdb_io import close_readonly, open_readonly

CHUNK = 4096


def _chunks(path):
    """Yield lists of C×H×W arrays from an LMDB, in key order."""
    env = open_readonly(path)
    try:
        with env.begin(buffers=False) as txn:
            datum = caffe_pb2.Datum()
            batch = []
            for key, value in txn.cursor():
                where = f"{path} record {key.decode(errors='replace')!r}"
                batch.append(datum_array(parse(value, where, datum), where))
                if len(batch) == CHUNK:
                    yield batch
                    batch = []
            if batch:
                yield batch
    finally:
        close_readonly(env)


def image_mean(lmdb_path):
    """(mean C×H×W float32, count) over every record of an LMDB."""
    total, count = None, 0
    for batch in _chunks(lmdb_path):
        shape = batch[0].shape
        if total is None:
            total = np.zeros(shape, np.int64 if batch[0].dtype == np.uint8 else np.float64)
        for array in batch:
            if array.shape != total.shape:
                raise UserError(f"{lmdb_path}: a record of shape {array.shape} among records "
                                f"of shape {total.shape}; all images must be the same size")
        stacked = np.stack(batch)
        total += stacked.sum(0, dtype=total.dtype)
        count += len(batch)
    if not count:
        raise UserError(f"{lmdb_path}: the LMDB holds no records to average")
    return total.astype(np.float32) / np.float32(count), count


def channel_means(mean):
    """Per-channel mean values as compute_image_mean logs them (float32, summed in order)."""
    c = mean.shape[0]
    flat = mean.reshape(c, -1).astype(np.float32)
    return [float(np.cumsum(row, dtype=np.float32)[-1] / np.float32(row.size)) for row in flat]


def write_mean(lmdb_path, out_path):
    """Compute the mean of `lmdb_path`, write it to `out_path`; returns (mean, count)."""
    mean, count = image_mean(lmdb_path)
    write_mean_file(mean, out_path)
    return mean, count
