"""Throughput of the data path: building LMDBs from JPEG files (face detection off and on),
rendering the built-in synthetic set, and reading records back as a float batch.

  python bench/bench_lmdb.py [--images 4000] [--workers 0] [--json]

Goals (issue 3, 2-core machine): ≥ 2,000 img/s building from JPEGs with detection off;
≥ 50,000 img/s reading raw 50×50 records into a float batch on one core.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bnface_caffe.data import build, synthetic  # noqa: E402
from bnface_caffe.engine.data_reader import DatumReader  # noqa: E402


def make_jpegs(root, images, people=100, side=250):
    """CASIA-WebFace-like input: <person>/<n>.jpg, 250×250 colour JPEGs of synthetic faces."""
    per = -(-images // people)
    rng = np.random.default_rng(0)
    written = 0
    for k in range(people):
        os.makedirs(os.path.join(root, f"{k:07d}"), exist_ok=True)
        for j, face in enumerate(synthetic.render_identity(0, k, min(per, images - written))):
            big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            tint = rng.uniform(0.8, 1.2, 3)
            colour = np.clip(big[:, :, None] * tint, 0, 255).astype(np.uint8)
            cv2.imwrite(os.path.join(root, f"{k:07d}", f"{j:03d}.jpg"), colour,
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            written += 1
        if written >= images:
            break
    return written


def timed_build(**kw):
    out = tempfile.mkdtemp()
    shutil.rmtree(out)
    t0 = time.perf_counter()
    facts = build.build(build.Options(outdir=out, **kw))
    seconds = time.perf_counter() - t0
    return facts, seconds, out


def read_rate(path, batch=256, seconds=2.0):
    """Images/s of next_batch + conversion to a float32 batch, one thread."""
    reader = DatumReader(path)   # silent: wrapping around logs Caffe's restart line
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        images, labels = reader.next_batch(batch)
        floats = images.astype(np.float32)
        n += len(floats)
    rate = n / (time.perf_counter() - t0)
    reader.close()
    return rate


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=4000)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    cv2.setNumThreads(1)
    figures = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "jpegs")
        n = make_jpegs(src, a.images)
        for detect in (False, True):
            facts, s, out = timed_build(source=src, detect=detect, workers=a.workers)
            tag = "detect_on" if detect else "detect_off"
            figures[f"build_jpeg_{tag}_img_s"] = n / s
            if detect:
                figures["detect_found_fraction"] = facts["crops"].get("face", 0) / n
            else:
                raw_train = out
                figures["read_raw_img_s"] = read_rate(os.path.join(out, "train_lmdb"))
            if detect:
                shutil.rmtree(out)
        facts, s, enc = timed_build(source=src, detect=False, workers=a.workers, encode_type="png")
        figures["read_png_encoded_img_s"] = read_rate(os.path.join(enc, "train_lmdb"))
        shutil.rmtree(enc)
        shutil.rmtree(raw_train)
        facts, s, syn = timed_build(synthetic=True, workers=a.workers)
        figures["build_synthetic_default_s"] = s
        figures["build_synthetic_default_images"] = facts["train"] + facts["test"]
        shutil.rmtree(syn)
    figures["jpeg_images"] = n
    print(f"build from {n} 250x250 JPEGs, detection off: "
          f"{figures['build_jpeg_detect_off_img_s']:,.0f} img/s (goal >= 2,000)")
    print(f"build from {n} 250x250 JPEGs, detection on:  "
          f"{figures['build_jpeg_detect_on_img_s']:,.0f} img/s "
          f"(faces found in {figures['detect_found_fraction']:.0%})")
    print(f"read raw 50x50 records -> float32 batch, 1 thread: "
          f"{figures['read_raw_img_s']:,.0f} img/s (goal >= 50,000)")
    print(f"read PNG-encoded records -> float32 batch, 1 thread: "
          f"{figures['read_png_encoded_img_s']:,.0f} img/s")
    print(f"build the default synthetic set ({figures['build_synthetic_default_images']} images): "
          f"{figures['build_synthetic_default_s']:.1f} s")
    if a.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
