"""Write records as convert_imageset does: key "%08d_<list path>" (index in the shuffled
list), value a serialized Datum, committed every 1000 records."""
import numpy as np
from tqdm import tqdm

from ..formats.datum import encode_compressed, encode_raw
from ..formats.lmdb_io import LmdbWriter


def record_key(index, path):
    return f"{index:08d}_{path}"


def estimated_map_size(count, bytes_per_record):
    """A first map size that usually fits (pages + B-tree overhead); it still doubles on demand."""
    return max(1 << 20, int(count * (bytes_per_record + 64) * 1.6))


def write_lmdb(path, order, paths, labels, store, encode_type=None, progress=False, desc=""):
    """Records for items `order` (indices into paths/labels/store) in that order."""
    size = int(np.prod(store.shape[1:]))
    writer = LmdbWriter(path, map_size=estimated_map_size(len(order), size))
    bar = tqdm(total=len(order), desc=desc, unit="img", disable=not progress, leave=False)
    with writer:
        for position, item in enumerate(order):
            image = np.asarray(store[item])
            value = (encode_compressed(image, labels[item], encode_type) if encode_type
                     else encode_raw(image, labels[item]))
            writer.put(record_key(position, paths[item]), value)
            if position % 1000 == 999:
                bar.update(1000)
        bar.update(len(order) % 1000)
    bar.close()
    return writer.resizes


def write_listfile(path, order, paths, labels):
    """`path label` lines in record order (what convert_imageset would be given)."""
    with open(path, "w", encoding="utf-8") as f:
        for item in order:
            f.write(f"{paths[item]} {labels[item]}\n")
