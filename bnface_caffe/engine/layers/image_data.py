"""ImageData (image_data_layer.cpp) and WindowData (refused).

ImageData reads a listfile of "<path> <label>" lines (the label after the last space,
parsed like atoi; the path joined to root_folder by plain concatenation), reads each
image with OpenCV as Caffe's ReadImageToCVMat does (IMREAD_COLOR as BGR, or
IMREAD_GRAYSCALE; resized with INTER_LINEAR to new_width x new_height when both are
set) and applies the DataTransformer (engine/transform.py) image by image. Tops:
data (batch, C, h, w) and label (batch). `shuffle` reorders the list at set-up and at
every pass's end (Fisher-Yates from the end, as caffe::shuffle); `rand_skip` starts
at a random line below it. Draws come from generators seeded from torch's, so the
solver's random_seed repeats them (Caffe's distributions, not its mt19937 stream).
Batches are read ahead in a background thread, as Caffe's prefetching does.
"""
import queue
import threading

import numpy as np
import torch

from ...errors import UserError
from ...proto import caffe_pb2
from ...shapes import shape_string
from ..transform import Transformer
from .base import Layer, register


def atoi(text):
    """C's atoi: leading spaces, an optional sign, digits; 0 when there are none."""
    text = text.lstrip(" \t\n\v\f\r")
    sign, i = 1, 0
    if text[:1] in ("+", "-"):
        sign, i = (-1 if text[0] == "-" else 1), 1
    digits = ""
    while i < len(text) and text[i].isdigit() and text[i].isascii():
        digits += text[i]
        i += 1
    return sign * int(digits) if digits else 0


def read_listfile(path, where):
    """[(filename, label, line number)] of an ImageData listfile."""
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("utf-8", errors="surrogateescape")
    except OSError as err:
        raise UserError(f"{where}: cannot read the listfile {path} ({err.strerror}); "
                        "image_data_param { source } names a file of '<image> <label>' lines")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()                     # std::getline gives no line after the last newline
    entries = []
    for number, line in enumerate(lines, 1):
        pos = line.rfind(" ")
        entries.append((line[:pos] if pos >= 0 else line, atoi(line[pos + 1:]), number))
    return entries


def read_image(path, new_height, new_width, is_color):
    """ReadImageToCVMat: HxWxC uint8 (BGR) or None when OpenCV cannot read it."""
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR if is_color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    if new_height > 0 and new_width > 0:
        image = cv2.resize(image, (new_width, new_height))
    if image.ndim == 2:
        image = image[:, :, None]
    return image


def caffe_shuffle(items, rng):
    """caffe::shuffle: for i = n-1 .. 1, swap items[i] with items[uniform 0..i]."""
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.integers(0, i + 1))
        items[i], items[j] = items[j], items[i]


def caffe_rng_rand():
    """An unsigned 32-bit draw from the process's generator (torch's, seeded by random_seed)."""
    return int(torch.randint(0, 2**32, (), dtype=torch.int64))


@register
class ImageData(Layer):
    type = "ImageData"
    bottoms = (0, 0)
    tops = (2, 2)
    rank = 0          # set by Net for multi-GPU training (only for Caffe's warning here)

    def setup(self, bottom_shapes):
        p = self.param.image_data_param
        where = f"layer '{self.name}' (ImageData)"
        self.transformer = Transformer(self.param.transform_param, self.phase, where,
                                       logger=self.log)
        self.new_height, self.new_width = int(p.new_height), int(p.new_width)
        if (self.new_height > 0) != (self.new_width > 0):
            raise self.error("new_height and new_width must be set together (both > 0, or "
                             "both 0 to keep the images' size)")
        self.is_color, self.root = p.is_color, p.root_folder
        self.log.info("image_data_layer.cpp:38", f"Opening file {p.source}")
        self.lines = read_listfile(p.source, where)
        if not self.lines:
            raise self.error(f"the listfile {p.source} is empty")
        self.rng = None
        if p.shuffle:
            self.log.info("image_data_layer.cpp:53", "Shuffling data")
            self.rng = np.random.default_rng(caffe_rng_rand())
            caffe_shuffle(self.lines, self.rng)
        elif self.phase == caffe_pb2.TRAIN and self.rank > 0 and p.rand_skip == 0:
            self.log.warning("image_data_layer.cpp:60",
                             "Shuffling or skipping recommended for multi-GPU")
        self.log.info("image_data_layer.cpp:63", f"A total of {len(self.lines)} images.")
        self.cursor = 0
        if p.rand_skip:
            skip = caffe_rng_rand() % p.rand_skip
            self.log.info("image_data_layer.cpp:70", f"Skipping first {skip} data points.")
            if skip >= len(self.lines):
                raise self.error(f"not enough points to skip: rand_skip drew {skip} for "
                                 f"{len(self.lines)} images")
            self.cursor = skip
        self.batch_size = int(p.batch_size)
        if self.batch_size <= 0:
            raise self.error("image_data_param { batch_size } must be positive")
        first = self._read(self.lines[self.cursor])
        c, h, w = self.transformer.output_shape(first.shape[2:] + first.shape[:2])
        self.top_shape = (self.batch_size, c, h, w)
        self.log.info("image_data_layer.cpp:90", "output data size: "
                      + ",".join(str(d) for d in self.top_shape))
        self.batches = _Batches(self._load_batch, max(1, int(self.param.data_param.prefetch)),
                                f"prefetch:{self.name}")

    def _read(self, entry):
        filename, _, number = entry
        image = read_image(self.root + filename, self.new_height, self.new_width,
                           self.is_color)
        if image is None:
            raise self.error(f"could not load {self.root + filename} (line {number} of "
                             f"{self.param.image_data_param.source})")
        return image

    def _load_batch(self):
        """load_batch: the next batch_size lines, wrapping (and reshuffling) at the end."""
        data = np.empty(self.top_shape, np.float32)
        labels = np.empty(self.batch_size, np.float32)
        for i in range(self.batch_size):
            entry = self.lines[self.cursor]
            image = self._read(entry)
            chw = np.ascontiguousarray(image.transpose(2, 0, 1))[None]
            if self.transformer.crop == 0 and chw.shape[1:] != self.top_shape[1:]:
                raise self.error(f"{self.root + entry[0]} (line {entry[2]}) is "
                                 f"{shape_string(chw.shape[1:])} but the batch is "
                                 f"{shape_string(self.top_shape[1:])}; images must share one "
                                 "size (set new_height/new_width, or crop_size)")
            data[i] = self.transformer(chw)[0]
            labels[i] = entry[1]
            self.cursor += 1
            if self.cursor >= len(self.lines):
                self.cursor = 0
                if self.rng is not None:
                    caffe_shuffle(self.lines, self.rng)
        return data, labels

    def reshape(self, bottom_shapes):
        return [self.top_shape, (self.batch_size,)]

    def forward(self, bottoms):
        data, labels = self.batches.next()
        return [torch.from_numpy(data).to(self.device), torch.from_numpy(labels).to(self.device)]

    def close(self):
        if getattr(self, "batches", None) is not None:
            self.batches.close()


class _Batches:
    """Calls `load` in a daemon thread, keeping up to `depth` batches ready; an error
    there is raised by next() (and by every later call)."""

    def __init__(self, load, depth, name):
        self.load = load
        self.queue = queue.Queue(maxsize=depth)
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stopped:
                self.queue.put(("ok", self.load()))
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self.queue.put(("error", err))

    def next(self):
        kind, value = self.queue.get()
        if kind == "error":
            self.queue.put((kind, value))
            raise value
        return value

    def close(self):
        self.stopped = True
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass


@register
class WindowData(Layer):
    """R-CNN's window-file layer: refused with one line (no modern recipe uses it)."""
    type = "WindowData"
    bottoms = (0, 0)
    tops = (2, 2)

    def open(self):
        raise self.error("WindowData (R-CNN window files) is not supported by this engine; "
                         "crop the windows into an ImageData listfile or an LMDB instead")
