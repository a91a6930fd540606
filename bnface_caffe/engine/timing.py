"""Per-layer forward and backward times, as `caffe time` measures them.

Training runs one autograd graph for the whole net, which cannot be timed layer
by layer. Here each layer instead reads detached copies of its bottoms, so its
backward is a separate autograd call: layer i's top gradients are the gradients
its readers left on their copies (zeros when nothing reads it, as Caffe's diffs
start), plus its loss weight. Like `caffe time`, every layer runs backward,
whether or not it feeds a loss, and parameter gradients add into Param.diff.
"""
import time

import torch

from . import precision


def _clock(device):
    if device.type == "cuda":
        def now():
            torch.cuda.synchronize(device)
            return time.perf_counter()
    else:
        now = time.perf_counter
    return now


def layerwise_pass(net, forward_us, backward_us):
    """One forward and one backward, layer by layer; adds microseconds per layer."""
    now = _clock(net.device)
    values = {}           # blob name -> (tensor, (producer node, top index))
    made, read = [], []   # per node: its top tensors; its bottom copies with their producers
    with precision.autocast(net.fast, net.device):
        for i, node in enumerate(net.nodes):
            copies = []
            for j, blob in enumerate(node.bottoms):
                tensor, producer = values[blob]
                needs = node.bottom_need_backward[j] and tensor.is_floating_point()
                copies.append((tensor.detach().requires_grad_(needs), producer))
            start = now()
            tops = node.layer.forward([c for c, _ in copies])
            forward_us[i] += (now() - start) * 1e6
            for k, (blob, top) in enumerate(zip(node.tops, tops)):
                values[blob] = (top, (i, k))
            made.append(tops)
            read.append(copies)
    grads = [[None] * len(tops) for tops in made]
    for i in reversed(range(len(net.nodes))):
        node = net.nodes[i]
        tensors, seeds = [], []
        for k, top in enumerate(made[i]):
            if not top.requires_grad:
                continue
            seed = grads[i][k] if grads[i][k] is not None else torch.zeros_like(top)
            weight = node.loss_weights[k] if k < len(node.loss_weights) else 0.0
            if weight:
                seed = seed + weight
            tensors.append(top)
            seeds.append(seed)
        start = now()
        if tensors:
            torch.autograd.backward(tensors, seeds)
        backward_us[i] += (now() - start) * 1e6
        for copy, (producer, k) in read[i]:
            if copy.grad is not None:
                old = grads[producer][k]
                grads[producer][k] = copy.grad if old is None else old + copy.grad
