"""The machine's own limit: the GFLOP/s its best kernels reach, measured in the same run as
the nets so that "% of peak" means the same on every machine.

Kernels: a square fp32 GEMM (torch.mm, MKL/OpenBLAS/cuBLAS) and a 3×3 convolution of the
paper's BN net (conv2: 64→128 channels on 25×25 maps, batch 64, channels-last, forward;
oneDNN/cuDNN), each in float32 and, where the hardware computes it natively, in bf16 (a CPU
with avx512_bf16 or AMX; any CUDA GPU); on CUDA also TF32. fp32 peak = the better of the fp32
GEMM and conv; the best peak = the best of all of them.

    python bench/peak.py [--threads N] [--rounds 5] [--clock wall|cpu] [--gpu ID] [--json]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

GEMM_N = 2048
CONV = dict(batch=64, channels=64, outputs=128, size=25)


def kernels(device="cpu", quick=False):
    """{name: (fn, flops)}: each fn runs its kernel once (synchronised on CUDA)."""
    import torch
    import torch.nn.functional as F
    from bnface_caffe.engine import precision
    device = torch.device(device)
    dtypes = {"fp32": torch.float32}
    if precision.uses_bf16(True, device):
        dtypes["bf16"] = torch.bfloat16
    n = 256 if quick else GEMM_N
    c = dict(CONV, batch=4) if quick else CONV
    sync = common._sync(device)
    out = {}
    for label, dtype in dtypes.items():
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        x = torch.randn(c["batch"], c["channels"], c["size"], c["size"], device=device,
                        dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c["outputs"], c["channels"], 3, 3, device=device, dtype=dtype)

        def gemm(a=a, b=b):
            torch.mm(a, b)
            sync()

        def conv(x=x, w=w):
            F.conv2d(x, w, padding=1)
            sync()
        conv_flops = 2 * c["batch"] * c["size"] ** 2 * c["outputs"] * c["channels"] * 9
        out[f"{label}_gemm"] = (gemm, 2 * n ** 3)
        out[f"{label}_conv"] = (conv, conv_flops)
    if device.type == "cuda":     # TF32: what fast mode allows for float32 matmuls/convs
        fp32_gemm, flops = out["fp32_gemm"]

        def tf32_gemm():
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                fp32_gemm()
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
        out["tf32_gemm"] = (tf32_gemm, flops)
    return out


def summarise(gflops):
    """Add fp32_peak (the better fp32 kernel) and best_peak (the best kernel) to a
    {kernel: GFLOP/s} dict; also bf16_peak when bf16 was measured."""
    result = dict(gflops)
    result["fp32_peak"] = max(v for k, v in gflops.items() if k.startswith("fp32_"))
    bf16 = [v for k, v in gflops.items() if k.startswith("bf16_")]
    if bf16:
        result["bf16_peak"] = max(bf16)
    result["best_peak"] = max(gflops.values())
    return result


def measure(device="cpu", rounds=5, clock="wall", quick=False):
    """{kernel: GFLOP/s, fp32_peak, best_peak, ...}, best of `rounds` alternating rounds."""
    ks = kernels(device, quick)
    timed = common.alternate({name: fn for name, (fn, _) in ks.items()}, rounds,
                             common.clock(clock))
    return summarise({name: ks[name][1] / timed[name]["best"] / 1e9 for name in ks})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="tiny sizes (for the tests)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cpu" if args.gpu is None else f"cuda:{args.gpu}"
    result = measure(device, args.rounds, args.clock, args.quick)
    result.update(device=device, threads=torch.get_num_threads(), clock=args.clock)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name, value in result.items():
        if isinstance(value, float):
            print(f"{name:10s} {value:8.1f} GFLOP/s")
    print(f"({device}, {result['threads']} threads, {args.clock} clock, best of {args.rounds})")


if __name__ == "__main__":
    main()
