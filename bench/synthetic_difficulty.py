"""How hard is the built-in synthetic set? Build it with the project's builder, then train
the generated BN net (tools/gen_net.py --bn, the demo's reduced widths and msra init) with the
engine at the paper's BN rate, testing once per epoch; print the test accuracy per epoch, the
epochs needed to reach 80%, and what a nearest-class-mean classifier gets on the same pixels.

  python bench/synthetic_difficulty.py                       # the default 300 x 30 set
  python bench/synthetic_difficulty.py --identities 50 --images-per-identity 20 --epochs 6
  python bench/synthetic_difficulty.py --out results/reference/difficulty   # also record it

With --out, the figures are written to OUT/difficulty.json and the printed report to
OUT/difficulty.txt (the README quotes that recorded run).
"""
import argparse
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bnface_caffe import paper  # noqa: E402
from bnface_caffe.architectures import NetOptions, build_net, parse_widths  # noqa: E402
from bnface_caffe.caffelog import parse_log  # noqa: E402
from bnface_caffe.data import build, synthetic  # noqa: E402
from bnface_caffe.engine.data_reader import DatumReader  # noqa: E402
from bnface_caffe.engine.train import TrainOptions, train  # noqa: E402
from bnface_caffe.formats import prototxt  # noqa: E402
from bnface_caffe.formats.blobproto import read_mean_file  # noqa: E402
from bnface_caffe.formats.glog import Glog  # noqa: E402
from bnface_caffe.proto import caffe_pb2  # noqa: E402
from bnface_caffe.reproduce_plan import PLANS  # noqa: E402


def load(path):
    reader = DatumReader(path)
    images, labels = reader.next_batch(len(reader))
    reader.close()
    return images.astype(np.float32), labels.astype(np.int64)


def nearest_mean_accuracy(x_train, y_train, x_test, y_test, classes):
    flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    centres = np.stack([flat_train[y_train == c].mean(0) for c in range(classes)])
    d = (flat_test ** 2).sum(1)[:, None] - 2 * flat_test @ centres.T + (centres ** 2).sum(1)
    return float((d.argmin(1) == y_test).mean())


def solver_text(net_path, iters_per_epoch, epochs, test_iter, lr, seed, prefix):
    s = caffe_pb2.SolverParameter(net=net_path, base_lr=lr, lr_policy="fixed", momentum=0.9,
                                  weight_decay=0.0005, display=iters_per_epoch,
                                  max_iter=iters_per_epoch * epochs,
                                  test_interval=iters_per_epoch, test_initialization=False,
                                  snapshot_after_train=False, random_seed=seed,
                                  snapshot_prefix=prefix,
                                  solver_mode=caffe_pb2.SolverParameter.CPU)
    s.test_iter.append(test_iter)
    return prototxt.format_text(s)


def main():
    demo = PLANS["demo"]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--identities", type=int, default=300)
    p.add_argument("--images-per-identity", type=int, default=30)
    p.add_argument("--difficulty", type=float, default=synthetic.DEFAULT_DIFFICULTY)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=demo.batch_size)
    p.add_argument("--lr", type=float, default=paper.BN_BASE_LR, help="fixed rate (0.055)")
    p.add_argument("--widths", default=demo.widths)
    p.add_argument("--out", help="also record the figures in this folder")
    a = p.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "lmdb")
        facts = build.build(build.Options(outdir=data, synthetic=True, identities=a.identities,
                                          images_per_identity=a.images_per_identity,
                                          difficulty=a.difficulty, seed=a.seed))
        x_train, y_train = load(os.path.join(data, "train_lmdb"))
        x_test, y_test = load(os.path.join(data, "test_lmdb"))
        mean = read_mean_file(os.path.join(data, "mean.binaryproto"))
        classes = facts["classes"]
        nm = nearest_mean_accuracy(x_train - mean, y_train, x_test - mean, y_test, classes)
        print(f"set: {classes} identities, {len(y_train)} train / {len(y_test)} test, difficulty "
              f"{a.difficulty}; nearest-mean accuracy {nm:.3f} (chance {1 / classes:.4f})",
              flush=True)
        net = build_net(NetOptions(bn=True, num_classes=classes, widths=parse_widths(a.widths),
                                   filler="msra", batch_size=a.batch, test_batch_size=100,
                                   train_lmdb=f"{data}/train_lmdb", test_lmdb=f"{data}/test_lmdb",
                                   mean_file=f"{data}/mean.binaryproto"))
        net_path, solver_path = os.path.join(tmp, "bn.prototxt"), os.path.join(tmp, "solver.prototxt")
        prototxt.write_text(net, net_path)
        iters_per_epoch = math.ceil(len(y_train) / a.batch)
        with open(solver_path, "w") as f:
            f.write(solver_text(net_path, iters_per_epoch, a.epochs, math.ceil(len(y_test) / 100),
                                a.lr, a.seed + 1, os.path.join(tmp, "snap")))
        log_path = os.path.join(tmp, "train.log")
        log = Glog(stderr=False)
        log.add_file(log_path)
        try:
            train(TrainOptions(solver_path, stages=("",)), log=log)
        finally:
            log.close()
        tests = parse_log(log_path).test
    accuracy = [row["accuracy"] for row in tests]
    to80 = next((k + 1 for k, acc in enumerate(accuracy) if acc >= paper.TARGET_ACCURACY), None)
    report = [f"set: {classes} identities, {len(y_train)} train / {len(y_test)} test images, "
              f"difficulty {a.difficulty}, seed {a.seed}",
              f"nearest-mean accuracy: {nm:.3f} (chance {1 / classes:.4f})",
              f"BN net (widths {a.widths}, msra), fixed lr {a.lr}, batch {a.batch}:"]
    report += [f"  epoch {k + 1:2d}: test accuracy {acc:.3f}" for k, acc in enumerate(accuracy)]
    report.append(f"epochs to 80% test accuracy: {to80 if to80 else f'not reached in {a.epochs}'}")
    print("\n".join(report[2:]))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        info = dict(command="python bench/synthetic_difficulty.py " + " ".join(sys.argv[1:]),
                    date=datetime.datetime.now().isoformat(timespec="seconds"),
                    minutes=round((time.time() - started) / 60, 1), machine=platform.platform(),
                    classes=classes, train=len(y_train), test=len(y_test),
                    difficulty=a.difficulty, nearest_mean=round(nm, 4),
                    accuracy=[round(x, 4) for x in accuracy], epochs_to_80=to80)
        with open(os.path.join(a.out, "difficulty.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        with open(os.path.join(a.out, "difficulty.txt"), "w") as f:
            f.write("\n".join([f"$ {info['command']}", *report]) + "\n")
        print(f"wrote {a.out}/difficulty.json and difficulty.txt")


if __name__ == "__main__":
    main()
