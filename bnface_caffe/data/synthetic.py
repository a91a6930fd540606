"""The built-in data: deterministic synthetic face identities, rendered as 50×50 gray images.

No public face set can be downloaded here, so `make lmdb` renders one. An identity is a set of
face parameters (head shape, hair, eyes, brows, nose, mouth, ears, skin tone, glasses, beard,
mole); every image of it varies pose (rotation, shift, scale, a little yaw/pitch), expression,
lighting, background and clothes, and adds blur, noise and sometimes an occluder. `difficulty`
scales that within-identity variation. Identity k (and image j of it) depends only on
(seed, k, j), so changing the number of identities or images never changes the others.
"""
import functools
import math

import cv2
import numpy as np

SS = 4            # supersampling: draw at 4× and area-downsample (anti-aliasing)
SHIFT = 4         # cv2 sub-pixel bits for drawing coordinates
# Measured with bench/synthetic_difficulty.py: at 0.5 a small BN CNN needs 7-9 epochs to 80%.
DEFAULT_DIFFICULTY = 0.5
# The renderer's variations were designed for 0..1 (at 1: up to ±20° rotation, strong side
# light, occluders in a fifth of the images); past 1 faces turn away and leave the frame.
MAX_DIFFICULTY = 1.0


def identity_params(seed, k):
    """The fixed look of identity k (units: pixels of a 50×50 face image)."""
    r = np.random.default_rng([seed, 1, k])
    u = r.uniform
    hair_kind = r.choice(3, p=[0.55, 0.27, 0.18])          # dark, brown, light/grey
    hair = [u(15, 55), u(60, 115), u(135, 215)][hair_kind]
    return dict(
        skin=u(95, 205), head_w=u(14.0, 18.5), head_h=u(18.0, 22.5), jaw=u(0.68, 0.98),
        hair=hair, hair_style=int(r.choice(5, p=[0.32, 0.22, 0.2, 0.1, 0.16])),
        hairline=u(0.25, 0.6), part=u(-1, 1),
        eye_y=u(-3.5, 0.0), eye_dx=u(5.3, 8.3), eye_w=u(2.0, 3.6), eye_h=u(0.8, 1.8),
        iris=u(5, 90), brow_gap=u(2.0, 4.0), brow_thick=u(0.5, 1.7), brow_tilt=u(-0.3, 0.3),
        brow_len=u(2.8, 5.0), brow_tone=hair * u(0.5, 1.0),
        nose_len=u(4.0, 8.0), nose_w=u(1.6, 3.6), nose_shade=u(15, 45),
        mouth_y=u(7.5, 11.5), mouth_w=u(3.2, 6.5), lip=u(0.5, 1.8), lip_tone=u(-55, -10),
        ear=u(2.3, 4.5), cheek=u(0, 14),
        glasses=bool(u() < 0.2), glasses_round=bool(u() < 0.5), glasses_tone=u(10, 90),
        glasses_wear=u(0.75, 1.0),
        beard=bool(u() < 0.14), moustache=bool(u() < 0.18), beard_tone=hair * u(0.6, 1.0),
        mole=bool(u() < 0.3), mole_xy=(u(-9, 9), u(-6, 12)), mole_r=u(0.5, 1.0),
    )


def image_params(seed, k, j, difficulty=DEFAULT_DIFFICULTY):
    """How image j of identity k departs from the canonical face."""
    r = np.random.default_rng([seed, 2, k, j])
    d = difficulty
    n = lambda s, lim=2.5: float(np.clip(r.normal(0, 1), -lim, lim) * s)  # noqa: E731
    return dict(
        angle=n(8.0 * d), scale=math.exp(n(0.07 * d)), dx=n(1.8 * d), dy=n(1.8 * d),
        yaw=n(0.22 * d), pitch=n(0.15 * d),
        smile=n(0.6), mouth_open=r.uniform() ** 3 * min(1.0, d), brow_raise=n(0.5 * d),
        eye_open=0.15 if r.uniform() < 0.05 * d else r.uniform(0.75, 1.1),
        hair_jitter=n(0.8 * d),
        background=r.uniform(20, 235), clothes=r.uniform(20, 235),
        light_dir=r.uniform(0, 2 * math.pi), light_amp=r.uniform(0, 55 * d),
        gain=math.exp(n(0.15 * d)), gamma=math.exp(n(0.18 * d)),
        blur=r.uniform(0, 0.9 * d), noise=r.uniform(1.0, 1.0 + 6.0 * d),
        occlude=bool(r.uniform() < 0.2 * d), occ=(r.uniform(0, 50), r.uniform(0, 50),
                                                   r.uniform(8, 22), r.uniform(5, 14),
                                                   r.uniform(0, 255), r.uniform(-40, 40)),
        glasses_on=r.uniform(),
    )


class _Canvas:
    """Drawing in face-pixel coordinates (0..size) on a SS× canvas, anti-aliased."""

    def __init__(self, size, tone):
        self.size = size
        self.img = np.full((size * SS, size * SS), float(tone), np.float32)
        self.f = SS * (1 << SHIFT)

    def _pts(self, pts):
        return (np.asarray(pts, np.float64) * self.f).round().astype(np.int32).reshape(-1, 1, 2)

    def fill(self, pts, tone):
        cv2.fillPoly(self.img, [self._pts(pts)], float(tone), cv2.LINE_AA, SHIFT)

    def stroke(self, pts, tone, width, closed=False):
        cv2.polylines(self.img, [self._pts(pts)], closed, float(tone),
                      max(1, int(round(width * SS))), cv2.LINE_AA, SHIFT)

    def ellipse(self, cx, cy, ax, ay, tone, angle=0.0):
        self.fill(ellipse_pts(cx, cy, ax, ay, angle), tone)


@functools.lru_cache(maxsize=None)
def _unit_arc(t0, t1, n):
    t = np.linspace(t0, t1, n)
    return np.cos(t), np.sin(t)


def ellipse_pts(cx, cy, ax, ay, angle=0.0, t0=0.0, t1=2 * math.pi, n=40):
    cos_t, sin_t = _unit_arc(t0, t1, n)
    x, y = ax * cos_t, ay * sin_t
    if angle == 0.0:
        return np.stack([cx + x, cy + y], 1)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def head_pts(cx, cy, w, h, jaw, n=64):
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    lower = np.clip(np.sin(t), 0, 1)
    x = cx + w * np.cos(t) * (1 - (1 - jaw) * lower ** 1.5)
    return np.stack([x, cy + h * np.sin(t)], 1)


def _draw_face(c, p, q):
    """Draw identity p with expression/pose-in-depth q on canvas c (canonical frame)."""
    cx, cy = c.size / 2.0, c.size / 2.0 + 1.0
    w, h, skin, hair = p["head_w"], p["head_h"], p["skin"], p["hair"]
    yaw, pitch = q["yaw"], q["pitch"]
    fx = lambda z: cx + yaw * z          # noqa: E731  feature centre shifted by depth z
    fy = lambda y, z: cy + y + pitch * z  # noqa: E731
    # Clothes and neck, long hair behind the head.
    c.ellipse(cx, cy + h + 14, w * 1.9, 12, q["clothes"])
    c.fill([(cx - w * 0.45, cy + h * 0.6), (cx + w * 0.45, cy + h * 0.6),
            (cx + w * 0.5, cy + h + 6), (cx - w * 0.5, cy + h + 6)], skin * 0.85)
    if p["hair_style"] == 2:
        c.fill(np.concatenate([ellipse_pts(cx, cy - 1, w + 3, h + 2, t0=math.pi, t1=2 * math.pi),
                               [(cx + w + 4, cy + h + 4), (cx - w - 4, cy + h + 4)]]), hair)
    # Ears (the far one hides as the head turns).
    for side in (-1, 1):
        ex = cx + side * (w - 0.3) - yaw * 2.0
        c.ellipse(ex, fy(p["eye_y"] + 2.0, 0), p["ear"] * (1 - 0.5 * side * yaw) * 0.6,
                  p["ear"], skin * 0.88)
    c.fill(head_pts(cx + yaw * 1.5, cy, w, h, p["jaw"]), skin)
    # Cheek shading gives the face some volume.
    for side in (-1, 1):
        c.ellipse(cx + side * w * 0.62 + yaw * 1.5, cy + 4, w * 0.3, h * 0.35, skin - p["cheek"])
    if p["beard"]:
        beard = head_pts(cx + yaw * 1.5, cy, w, h, p["jaw"])
        beard = beard[beard[:, 1] > cy + p["mouth_y"] - 4.5]
        c.fill(beard, p["beard_tone"])
    _draw_hair(c, p, q, cx, cy)
    # Brows, eyes.
    for side in (-1, 1):
        ex, ey = fx(3.0) + side * p["eye_dx"], fy(p["eye_y"], 3.0)
        by = ey - p["brow_gap"] - q["brow_raise"]
        half = p["brow_len"] / 2
        tilt = p["brow_tilt"] * half
        c.stroke([(ex - half, by + side * tilt), (ex, by - 0.4), (ex + half, by - side * tilt)],
                 p["brow_tone"], p["brow_thick"])
        open_h = max(0.25, p["eye_h"] * q["eye_open"])
        ew = p["eye_w"] * (1 - 0.35 * side * yaw)
        c.ellipse(ex, ey, ew, open_h, min(250.0, skin + 45))
        c.ellipse(ex + yaw * 0.8, ey, min(ew, open_h) * 0.85, open_h * 0.95, p["iris"])
        c.stroke(ellipse_pts(ex, ey, ew, open_h, t0=math.pi, t1=2 * math.pi, n=12),
                 skin * 0.45, 0.45)
    # Nose: a shaded ridge, nostrils.
    ny0, ny1 = fy(p["eye_y"] + 1.0, 3.0), fy(p["eye_y"] + 1.0 + p["nose_len"], 6.0)
    nx = fx(6.0)
    c.stroke([(fx(4.0) + 0.6, ny0), (nx + 0.8, ny1)], skin - p["nose_shade"], 0.6)
    for side in (-1, 1):
        c.ellipse(nx + side * p["nose_w"] * 0.55, ny1 + 0.3, 0.7, 0.45, skin * 0.35)
    # Mouth: the lip line bends with the smile; open mouths show a dark gap.
    mx, my, mw = fx(3.5), fy(p["mouth_y"], 3.5), p["mouth_w"]
    bend = -q["smile"] * 1.6
    xs = np.linspace(-mw, mw, 9)
    lip = np.stack([mx + xs, my + bend * (xs / mw) ** 2 - bend * 0.5], 1)
    if q["mouth_open"] > 0.25:
        gap = q["mouth_open"] * 2.2
        c.fill(np.concatenate([lip, (lip + [0, gap])[::-1]]), 25)
        c.stroke(lip + [0, gap], skin + p["lip_tone"], p["lip"])
    c.stroke(lip, skin + p["lip_tone"], p["lip"])
    if p["moustache"]:
        c.stroke([(mx - mw, my - 1.0), (mx, my - 2.3), (mx + mw, my - 1.0)], p["beard_tone"], 1.3)
    if p["mole"]:
        mxy = p["mole_xy"]
        c.ellipse(fx(2.0) + mxy[0], cy + mxy[1], p["mole_r"], p["mole_r"], skin * 0.4)
    if p["glasses"] and q["glasses_on"] < p["glasses_wear"]:
        ey = fy(p["eye_y"], 3.0)
        rw, rh = p["eye_w"] + 1.6, p["eye_h"] + 1.8
        for side in (-1, 1):
            ex = fx(3.0) + side * p["eye_dx"]
            if p["glasses_round"]:
                c.stroke(ellipse_pts(ex, ey, rw, rh), p["glasses_tone"], 0.6, closed=True)
            else:
                c.stroke([(ex - rw, ey - rh), (ex + rw, ey - rh), (ex + rw, ey + rh),
                          (ex - rw, ey + rh)], p["glasses_tone"], 0.6, closed=True)
        c.stroke([(fx(3.0) - p["eye_dx"] + rw, ey), (fx(3.0) + p["eye_dx"] - rw, ey)],
                 p["glasses_tone"], 0.6)


def _draw_hair(c, p, q, cx, cy):
    w, h, style, hair = p["head_w"], p["head_h"], p["hair_style"], p["hair"]
    top = cy - h - 1.5
    line = cy - h + (h + p["eye_y"] - p["brow_gap"] - 2) * p["hairline"] + q["hair_jitter"]
    if style == 3:  # receding: hair only over the ears
        for side in (-1, 1):
            c.ellipse(cx + side * (w - 0.6), cy - h * 0.3, 1.4, h * 0.22, hair)
        return
    cap = ellipse_pts(cx + q["yaw"] * 1.2, cy - 1, w + 1.3, h + 1.5, t0=math.pi, t1=2 * math.pi)
    part = cx + p["part"] * w * 0.5
    front = [(cx + w + 1.3, line + (3.0 if style in (1, 2) else 0.0)),
             (part, line - 1.0 if style != 4 else line + 3.0),
             (cx - w - 1.3, line + (3.0 if style in (1, 2) else 0.0))]
    c.fill(np.concatenate([cap, front]), hair)
    if style in (1, 2):  # sides down over the ears
        for side in (-1, 1):
            c.fill([(cx + side * (w + 1.5), top + h * 0.5), (cx + side * (w - 1.8), line),
                    (cx + side * (w - 1.0), cy + (2 if style == 1 else h * 0.7)),
                    (cx + side * (w + 2.0), cy + (3 if style == 1 else h * 0.8))], hair)


def render(seed, k, j, size=50, difficulty=DEFAULT_DIFFICULTY, ident=None):
    """Image j of identity k: a size×size uint8 gray face."""
    p = ident or identity_params(seed, k)
    q = image_params(seed, k, j, difficulty)
    c = _Canvas(size, q["background"])
    _draw_face(c, p, q)
    # Pose: rotate and scale about the face centre, then shift (on the supersampled canvas).
    centre = (c.img.shape[1] / 2.0, c.img.shape[0] / 2.0)
    m = cv2.getRotationMatrix2D(centre, q["angle"], q["scale"])
    m[:, 2] += (q["dx"] * SS, q["dy"] * SS)
    img = cv2.warpAffine(c.img, m, c.img.shape[::-1], flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    if q["occlude"]:
        x, y, ow, oh, tone, tilt = q["occ"]
        f = size / 50.0
        box = cv2.boxPoints(((x * f, y * f), (ow * f, oh * f), tilt))
        cv2.fillPoly(img, [np.round(box * 16).astype(np.int32)], tone, cv2.LINE_AA, 4)
    img = _light(img, q, size)
    if q["blur"] > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), q["blur"] * size / 50)
    noise = np.random.default_rng([seed, 3, k, j]).standard_normal(img.shape, np.float32)
    img += noise * q["noise"]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _light(img, q, size):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    ramp = math.cos(q["light_dir"]) * xs + math.sin(q["light_dir"]) * ys
    img = img * q["gain"] + ramp * (2 * q["light_amp"])
    img = np.clip(img, 0, 255) / 255.0
    return (img ** q["gamma"]) * 255.0


def render_identity(seed, k, count, size=50, difficulty=DEFAULT_DIFFICULTY):
    """All `count` images of identity k, [count, size, size] uint8."""
    ident = identity_params(seed, k)
    return np.stack([render(seed, k, j, size, difficulty, ident) for j in range(count)])


def virtual_path(k, j):
    """The list path a rendered image gets in keys and listfiles (there is no file)."""
    return f"id{k:04d}/{j:04d}.png"


def contact_sheet(images, cols=10, pad=2, tone=255):
    """Tile [N, H, W] gray images into one image (for eyeballing a data set)."""
    images = np.asarray(images)
    n, hgt, wid = images.shape
    rows = -(-n // cols)
    sheet = np.full((rows * (hgt + pad) + pad, cols * (wid + pad) + pad), tone, np.uint8)
    for i, im in enumerate(images):
        r, col = divmod(i, cols)
        sheet[pad + r * (hgt + pad):pad + r * (hgt + pad) + hgt,
              pad + col * (wid + pad):pad + col * (wid + pad) + wid] = im
    return sheet
