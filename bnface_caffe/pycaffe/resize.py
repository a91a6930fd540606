"""The resampling behind caffe.io.resize_image, in numpy.

pycaffe resizes 1- and 3-channel images with scikit-image's `resize(order=1, mode='constant')`
and any other channel count with `scipy.ndimage.zoom(order=1)`. Neither library is a
dependency here, so their arithmetic is done below, as those versions (scikit-image 0.19+,
SciPy 1.6+) do it:

- `smooth_and_zoom` (the skimage path): when any axis shrinks, a Gaussian blur first (sigma
  (factor - 1) / 2 per axis, truncated at 4 sigma, zeros outside, the result rounded to the
  image's float type after each axis), then linear interpolation at pixel centres
  (input coordinate (i + 0.5) * in/out - 0.5) where samples outside the image count as 0,
  then a clip to the input's range.
- `zoom_corners` (the scipy path): linear interpolation with the corners aligned (input
  coordinate i * (in - 1) / (out - 1)); a coordinate past the last pixel gives 0.

Interpolation sums the four neighbours in float64 in SciPy's order and is rounded once to the
output type, so results agree with pycaffe's to the last bit in all but rare ties.
"""
import numpy as np

TRUNCATE = 4.0   # scipy.ndimage.gaussian_filter's default: the kernel spans 4 sigma


def smooth_and_zoom(image, out_shape):
    """skimage.transform.resize(image, out_shape, order=1, mode='constant') for a float
    H x W x K image; `out_shape` is (H', W')."""
    image = np.asarray(image)
    if image.dtype.kind != "f":
        image = image.astype(np.float64)   # (pycaffe hands it floats already)
    elif image.dtype == np.float16:
        image = image.astype(np.float32)
    out_shape = tuple(int(n) for n in out_shape)
    full_out = out_shape + image.shape[2:]
    filtered = image
    if any(o < i for o, i in zip(full_out, image.shape)):
        factors = np.divide(image.shape, full_out)
        for axis, sigma in enumerate(np.maximum(0, (factors - 1) / 2)):
            if sigma > 1e-15:
                filtered = _gaussian_axis(filtered, axis, float(sigma)).astype(image.dtype)
    rows = _samples(image.shape[0], out_shape[0], pixel_centres=True)
    cols = _samples(image.shape[1], out_shape[1], pixel_centres=True)
    out = _bilinear(filtered, rows, cols).astype(image.dtype)
    low, high = np.min(image), np.max(image)
    if np.isnan(low):
        low, high = np.nanmin(image), np.nanmax(image)
    if not low <= 0 <= high and np.min(out) <= 0 <= np.max(out):
        low, high = min(low, image.dtype.type(0)), max(high, image.dtype.type(0))
    np.clip(out, low, high, out=out)
    return out


def zoom_corners(image, out_shape):
    """scipy.ndimage.zoom(image, (h/H, w/W, 1), order=1) for an H x W x K image (mode
    'constant', corners aligned); `out_shape` is (h, w) as zoom rounds it."""
    image = np.asarray(image)
    rows = _samples(image.shape[0], out_shape[0], pixel_centres=False)
    cols = _samples(image.shape[1], out_shape[1], pixel_centres=False)
    out = _bilinear(image, rows, cols)
    if image.dtype.kind in "iu":
        info = np.iinfo(image.dtype)
        half = np.where(out > 0, 0.5, -0.5 if image.dtype.kind == "i" else 0.0)
        out = np.clip(np.trunc(out + half), info.min, info.max)
    return out.astype(image.dtype)


def _samples(n_in, n_out, pixel_centres):
    """Per output index along one axis: the two input indices, their weights, whether each
    index is inside the input, and whether the output sample exists at all."""
    k = np.arange(n_out, dtype=np.float64)
    if pixel_centres:
        coord = (k + 0.5) * (n_in / n_out) - 0.5
        exists = np.ones(n_out, bool)            # outside samples read as 0
    else:
        coord = k * ((n_in - 1) / (n_out - 1) if n_out > 1 else 1.0)
        exists = (coord >= 0) & (coord <= n_in - 1)   # else the output is 0
    start = np.floor(coord)
    w_lo = 1.0 - (coord - start)
    w_hi = 1.0 - w_lo                  # scipy's weights: the last one is 1 - the others
    lo = start.astype(np.intp)
    hi = lo + 1
    return [(lo, w_lo, (lo >= 0) & (lo < n_in) & exists),
            (hi, w_hi, (hi >= 0) & (hi < n_in) & exists)]


def _bilinear(image, rows, cols):
    """Sum over the 4 neighbours of (value * row weight) * column weight in float64, in
    scipy's order, for every channel."""
    values = image.astype(np.float64)
    n_rows, n_cols = values.shape[:2]
    out = 0.0
    for r_index, r_weight, r_inside in rows:
        picked_rows = values[np.clip(r_index, 0, n_rows - 1)]
        for c_index, c_weight, c_inside in cols:
            picked = picked_rows[:, np.clip(c_index, 0, n_cols - 1)]
            inside = r_inside[:, None] & c_inside[None, :]
            picked = np.where(inside.reshape(inside.shape + (1,) * (values.ndim - 2)), picked, 0.0)
            shape_r = (-1,) + (1,) * (values.ndim - 1)
            shape_c = (1, -1) + (1,) * (values.ndim - 2)
            out = out + (picked * r_weight.reshape(shape_r)) * c_weight.reshape(shape_c)
    return out


def _gaussian_axis(values, axis, sigma):
    """scipy.ndimage.gaussian_filter1d(mode='constant', cval=0) in float64."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    weights = weights / weights.sum()
    values = np.moveaxis(values.astype(np.float64), axis, 0)
    n = values.shape[0]
    padded = np.zeros((n + 2 * radius,) + values.shape[1:])
    padded[radius:radius + n] = values
    # The kernel is symmetric: the centre term, then the pairs from the farthest in
    # (scipy's order of summation).
    out = padded[radius:radius + n] * weights[radius]
    for j in range(radius, 0, -1):
        out = out + (padded[radius - j:radius - j + n] + padded[radius + j:radius + j + n]) \
            * weights[radius - j]
    return np.moveaxis(out, 0, axis)
