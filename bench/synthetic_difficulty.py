"""How hard is the built-in synthetic set? Build it (tools' own builder), then train a small
CNN in plain PyTorch — the paper's BN net at reduced widths, Caffe-style ceil-mode pooling — and
print test accuracy per epoch and the epochs needed to reach 80%.

  python bench/synthetic_difficulty.py                      # the default set
  python bench/synthetic_difficulty.py --identities 50 --images-per-identity 20 --epochs 10
  python bench/synthetic_difficulty.py --sheet /tmp/synthetic.png   # also save a contact sheet
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bnface_caffe.data import build, synthetic  # noqa: E402
from bnface_caffe.data.mean import read_mean  # noqa: E402
from bnface_caffe.data.reader import DatumReader  # noqa: E402
from bnface_caffe.formats.glog import log  # noqa: E402


def load(path):
    log.stderr = False  # reading the whole LMDB ends with the (expected) restart line
    reader = DatumReader(path)
    images, labels = reader.next_batch(len(reader))
    reader.close()
    return images.astype(np.float32), labels.astype(np.int64)


def small_bn_net(classes, widths=(8, 16, 16, 24, 48, 40, 80), bn=True):
    """The paper's BN net (7 convs: 2 | 1 | 2 | 2, BN between the convs of a block), narrower.
    Pooling: 2×2 max, ceil mode (50→25→13→7), then 7×7 average."""
    c1, c2, c3, c4, c5, c6, c7 = widths

    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]

    def norm(c):
        return [nn.BatchNorm2d(c)] if bn else []
    layers = (conv(1, c1) + norm(c1) + conv(c1, c2) + [nn.MaxPool2d(2, 2, ceil_mode=True)]
              + conv(c2, c3) + [nn.MaxPool2d(2, 2, ceil_mode=True)]
              + conv(c3, c4) + norm(c4) + conv(c4, c5) + [nn.MaxPool2d(2, 2, ceil_mode=True)]
              + conv(c5, c6) + norm(c6) + conv(c6, c7) + [nn.AvgPool2d(7), nn.Flatten(),
                                                           nn.Linear(c7, classes)])
    return nn.Sequential(*layers)


def caffe_fill(net, filler):
    """Caffe's fillers as the generated nets use them: xavier = U(±sqrt(3/fan_in)), msra =
    N(0, sqrt(2/fan_in)); biases constant 0. ("torch" keeps PyTorch's defaults.)"""
    if filler == "torch":
        return
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                if filler == "xavier":
                    bound = (3.0 / fan_in) ** 0.5
                    m.weight.uniform_(-bound, bound)
                else:
                    m.weight.normal_(0, (2.0 / fan_in) ** 0.5)
                m.bias.zero_()


def nearest_mean_accuracy(x_train, y_train, x_test, y_test, classes):
    flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    centres = np.stack([flat_train[y_train == c].mean(0) for c in range(classes)])
    d = (flat_test ** 2).sum(1)[:, None] - 2 * flat_test @ centres.T + (centres ** 2).sum(1)
    return float((d.argmin(1) == y_test).mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--identities", type=int, default=300)
    p.add_argument("--images-per-identity", type=int, default=30)
    p.add_argument("--difficulty", type=float, default=synthetic.DEFAULT_DIFFICULTY)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--step-at", type=int, default=0,
                   help="multiply the lr by 0.1 from this epoch on (0: constant lr)")
    p.add_argument("--no-bn", action="store_true", help="baseline: no BatchNorm")
    p.add_argument("--widths", default="8,16,16,24,48,40,80")
    p.add_argument("--filler", choices=["xavier", "msra", "torch"], default="xavier",
                   help="weight init (the generated nets use Caffe's xavier)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--sheet", help="save a contact sheet of 12 identities × 10 images here")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "lmdb")
        t0 = time.time()
        facts = build.build(build.Options(outdir=out, synthetic=True, identities=a.identities,
                                          images_per_identity=a.images_per_identity,
                                          difficulty=a.difficulty, seed=a.seed))
        build_s = time.time() - t0
        x_train, y_train = load(os.path.join(out, "train_lmdb"))
        x_test, y_test = load(os.path.join(out, "test_lmdb"))
        mean = read_mean(os.path.join(out, "mean.binaryproto"))
    if a.sheet:
        import cv2
        rows = [synthetic.render_identity(a.seed, k, 10, difficulty=a.difficulty)
                for k in range(12)]
        sheet = synthetic.contact_sheet(np.concatenate(rows), cols=10)
        cv2.imwrite(a.sheet, cv2.resize(sheet, None, fx=2, fy=2,
                                        interpolation=cv2.INTER_NEAREST))
    classes = facts["classes"]
    scale = 1 / 256.0  # Caffe's usual transform_param: (pixel - mean) * 0.00390625
    x_train, x_test = (x_train - mean) * scale, (x_test - mean) * scale
    nm = nearest_mean_accuracy(x_train, y_train, x_test, y_test, classes)
    print(f"set: {classes} identities, {len(y_train)} train / {len(y_test)} test, difficulty "
          f"{a.difficulty}, built in {build_s:.1f} s; nearest-mean accuracy {nm:.3f} "
          f"(chance {1 / classes:.4f})", flush=True)
    widths = tuple(int(w) for w in a.widths.split(","))
    net = small_bn_net(classes, widths, bn=not a.no_bn)
    caffe_fill(net, a.filler)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xe, ye = torch.from_numpy(x_test), torch.from_numpy(y_test)
    history, to80 = [], None
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        if a.step_at and epoch == a.step_at:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        net.train()
        order = torch.randperm(len(yt))
        for i in range(0, len(order), a.batch):
            idx = order[i:i + a.batch]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = float(torch.cat([net(xe[i:i + 500]).argmax(1) for i in range(0, len(ye), 500)])
                        .eq(ye).float().mean())
        history.append(acc)
        if to80 is None and acc >= 0.8:
            to80 = epoch
        print(f"epoch {epoch:2d}: test accuracy {acc:.3f}  (last train loss {loss.item():.3f}, "
              f"{time.time() - t0:.1f} s)", flush=True)
    print(f"epochs to 80% test accuracy: {to80 if to80 else f'not reached in {a.epochs}'}; "
          f"best {max(history):.3f}")
    if a.json:
        print(json.dumps(dict(classes=classes, train=len(y_train), test=len(y_test),
                              difficulty=a.difficulty, nearest_mean=nm, accuracy=history,
                              epochs_to_80=to80)))


if __name__ == "__main__":
    main()
