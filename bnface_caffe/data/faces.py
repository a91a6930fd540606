"""Face preprocessing with OpenCV: gray image → (largest Haar-cascade face + margin | centre)
square crop → size×size with INTER_AREA.

Images already at the target size are taken as they are (aligned crops need no detection).
When the face fills the image (LFW-style tight crops), the square with the full margin runs
past the edge, and padding it would smear the border into streaks. The margin is then shrunk,
keeping the square centred on the face, until it fits ("face-fitted"); only a face that itself
reaches past the edge is padded, by mirroring the image there ("face-padded"), which shows far
less than repeated border pixels. The builder counts both.
"""
import os

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 128   # detect on a copy whose shorter side is this (speed; boxes scaled back):
                    # with Haar's 24-pixel window, faces from ~1/5 of that side up are found


def load_cascade(name=CASCADE):
    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's Haar cascade {path} could not be loaded")
    return cascade


def detect_largest_face(gray, cascade):
    """(x, y, w, h) of the largest face found in a gray uint8 image, or None."""
    short = min(gray.shape)
    # Shrink big images to DETECT_SIDE; enlarge tiny ones (e.g. 25×25 crops) to 60 pixels so
    # a face filling them still fits Haar's 24×24 window with room to spare.
    scale = DETECT_SIDE / short if short > DETECT_SIDE else max(1.0, 60.0 / short)
    small = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    faces = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=4, minSize=(24, 24))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: (f[2] * f[3], -f[0], -f[1]))
    return (float(x / scale), float(y / scale), float(w / scale), float(h / scale))


def square_around(box, margin):
    """The square (x0, y0, side) centred on `box` with `margin` × its size added on each side."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(1, int(round(side)))


def fit_square(box, margin, shape):
    """(x0, y0, side, how) for a detected face: the square_around it when that fits inside
    the image ("face"); else the largest square on the same centre that fits, if it still
    holds the whole face box ("face-fitted": the margin shrunk); else the full square, to be
    padded ("face-padded": the face itself reaches past the edge)."""
    height, width = shape[:2]
    x0, y0, side = square_around(box, margin)
    if x0 >= 0 and y0 >= 0 and x0 + side <= width and y0 + side <= height:
        return x0, y0, side, "face"
    x, y, w, h = box
    cx, cy = x + w / 2.0, y + h / 2.0
    room = int(2 * min(cx, cy, width - cx, height - cy))   # the widest centred square inside
    if room >= max(w, h) and room >= 1:
        fx = min(max(int(round(cx - room / 2.0)), 0), width - room)
        fy = min(max(int(round(cy - room / 2.0)), 0), height - room)
        return fx, fy, room, "face-fitted"
    return x0, y0, side, "face-padded"


def centre_square(shape):
    height, width = shape[:2]
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side


def crop_square(gray, x0, y0, side, border=cv2.BORDER_REPLICATE):
    """The side×side window at (x0, y0); parts outside the image repeat the border pixels
    (or follow `border`, e.g. cv2.BORDER_REFLECT_101 to mirror the image there)."""
    height, width = gray.shape
    if x0 >= 0 and y0 >= 0 and x0 + side <= width and y0 + side <= height:
        return gray[y0:y0 + side, x0:x0 + side]
    pad = [max(0, -y0), max(0, y0 + side - height), max(0, -x0), max(0, x0 + side - width)]
    if border == cv2.BORDER_REFLECT_101 and max(pad) >= min(height, width):
        border = cv2.BORDER_REPLICATE   # mirroring needs the image to be wider than the pad
    padded = cv2.copyMakeBorder(gray, *pad, border)
    return padded[y0 + pad[0]:y0 + pad[0] + side, x0 + pad[2]:x0 + pad[2] + side]


def face_crop(gray, size=50, cascade=None, margin=0.2):
    """A size×size uint8 face crop and how it was made: "as-is", "face", "face-fitted",
    "face-padded" (see fit_square) or "centre"."""
    gray = np.asarray(gray)
    if gray.shape == (size, size):
        return gray, "as-is"
    how, square = "centre", centre_square(gray.shape)
    if cascade is not None:
        box = detect_largest_face(gray, cascade)
        if box is not None:
            *square, how = fit_square(box, margin, gray.shape)
    crop = crop_square(gray, *square, border=cv2.BORDER_REFLECT_101)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), how


def read_gray(path):
    """(gray uint8 image, None) or (None, why it cannot be used) — never raises for bad files."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return None, f"cannot read ({err.strerror or err})"
    if not data:
        return None, "empty file"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None, "not a decodable image (corrupt or unsupported)"
    return image, None


def load_face(path, size=50, cascade=None, margin=0.2):
    """(crop, how) for a usable image file, (None, reason) for a skipped one."""
    gray, why = read_gray(path)
    if gray is None:
        return None, why
    return face_crop(gray, size, cascade, margin)
