"""bench/: FLOPs counted from a prototxt against the formula worked out by hand, the alternating
best-of timer, the peak summary, the scaling benchmark at a tiny size (its figures included), and
BENCHMARKS.md's goal lines from given figures. (The benchmarks' figures themselves are never
asserted: speed is measured by `make bench`, not tested.)"""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
import bench_scaling  # noqa: E402
import common  # noqa: E402
import flops  # noqa: E402
import peak  # noqa: E402
import report_md  # noqa: E402

from bnface_caffe.engine import Net  # noqa: E402
from bnface_caffe.proto import caffe_pb2  # noqa: E402
from engine_util import captured_log, net_param  # noqa: E402

SMALL = """
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 1 dim: 6 dim: 6 } shape { dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "conv2" type: "Convolution" bottom: "conv" top: "conv2"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 1 } }
layer { name: "pool" type: "Pooling" bottom: "conv2" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 5 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


def test_flops_per_layer_by_hand():
    net = Net(net_param(SMALL), phase=caffe_pb2.TRAIN, logger=captured_log()[0])
    rows = {r.name: r for r in flops.count(net)}
    # conv: 2 images × 3 outputs × 4×4 positions × (1 channel × 3×3) = 864 MACs; its bottom is
    # the data (no gradient), so backward is the weight gradient only.
    assert (rows["conv"].forward, rows["conv"].backward) == (2 * 864, 2 * 864)
    # conv2: 2 × 4 × 4×4 × (3 × 9) = 3456 MACs; backward: input and weight gradients.
    assert (rows["conv2"].forward, rows["conv2"].backward) == (2 * 3456, 4 * 3456)
    # fc: 2 × (4 channels × 2×2) × 5 = 160 MACs
    assert (rows["fc"].forward, rows["fc"].backward) == (2 * 160, 4 * 160)
    assert rows["pool"].total == rows["loss"].total == 0
    assert flops.training_flops(net) == 2 * 864 * 2 + 6 * 3456 + 6 * 160


def test_the_bn_nets_flops_follow_its_widths():
    # the paper's BN net at batch 64: 3×3 convs at 50, 50, 25, 13, 13, 7, 7 (ceil pooling),
    # widths 32, 64 | 128 | 96, 192 | 160, 320, then 320 → 14,700
    shapes = [(1, 32, 50), (32, 64, 50), (64, 128, 25), (128, 96, 13), (96, 192, 13),
              (192, 160, 7), (160, 320, 7)]
    macs = [64 * o * s * s * i * 9 for i, o, s in shapes]
    fc = 64 * 320 * 14700
    want = 2 * macs[0] * 2 + sum(6 * m for m in macs[1:]) + 6 * fc
    rows = flops.net_flops(True, 64)
    assert sum(r.total for r in rows) == want
    assert want / 64 == pytest.approx(1.081e9, rel=1e-3)     # ≈ 1.08 GFLOP per image


def test_alternate_interleaves_the_candidates_and_keeps_the_best():
    # a fake clock: each call advances it by that candidate's next duration
    state = {"t": 0.0}
    durations = {"a": iter([7, 5, 1, 3]), "b": iter([7, 2, 2, 9])}   # first: the warm-up
    order = []

    def timed(name):
        def fn():
            order.append(name)
            state["t"] += next(durations[name])
        return fn
    result = common.alternate({"a": timed("a"), "b": timed("b")}, 3, lambda: state["t"])
    assert order == ["a", "b", "a", "b", "a", "b", "a", "b"]      # warm-ups, then in turn
    assert result["a"]["samples"] == [5, 1, 3] and result["b"]["samples"] == [2, 2, 9]
    assert (result["a"]["best"], result["a"]["median"]) == (1, 3)
    assert (result["b"]["best"], result["b"]["median"]) == (2, 2)


def test_peak_summary():
    got = peak.summarise({"fp32_gemm": 80.0, "fp32_conv": 110.0, "bf16_gemm": 190.0,
                          "bf16_conv": 220.0})
    assert (got["fp32_peak"], got["bf16_peak"], got["best_peak"]) == (110.0, 220.0, 220.0)
    assert "bf16_peak" not in peak.summarise({"fp32_gemm": 1.0, "fp32_conv": 2.0})


def test_peak_kernels_run_at_a_tiny_size():
    result = peak.measure("cpu", rounds=1, quick=True)
    assert result["fp32_gemm"] > 0 and result["fp32_conv"] > 0
    assert result["best_peak"] >= result["fp32_peak"] > 0


def test_scaling_benchmark_quick(tmp_path, capsys):
    bench_scaling.main(["--quick", "--rounds", "1", "--figures", str(tmp_path), "--json"])
    result = json.loads(capsys.readouterr().out)
    axes = {(r["axis"], r["point"]["mode"]) for r in result["rows"]}
    assert axes == {(a, m) for a in ("batch", "classes", "widths", "threads")
                    for m in ("faithful", "fast")}
    assert all(r["img_s"] > 0 and r["peak_rss_mb"] > 0 for r in result["rows"])
    batch = [r for r in result["rows"] if r["axis"] == "batch" and r["point"]["mode"] == "faithful"]
    assert [r["value"] for r in batch] == bench_scaling.QUICK_AXES["batch"]
    for axis, path in result["figures"].items():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", axis


def row(img_s, flop=69.2):
    s = 64 / img_s
    return {"s_per_iter": s, "img_s": img_s, "gflop_s": flop / s,
            "hours_420k": 420000 * s / 3600}


def test_goal_lines_from_given_figures():
    peak_ = {"fp32_gemm": 100.0, "fp32_conv": 120.0, "fp32_peak": 120.0, "bf16_gemm": 200.0,
             "bf16_conv": 240.0, "best_peak": 240.0}
    # faithful 90 GFLOP/s (90% of the GEMM peak: met), fast 150 (62% of 240: not met)
    bn = {"net": "bn", "batch": 64, "threads": 2, "peak": peak_, "bf16": True,
          "engine_faithful": row(90 * 64 / 69.2), "engine_fast": row(150 * 64 / 69.2),
          "plain_faithful": row(80 * 64 / 69.2), "plain_fast": row(160 * 64 / 69.2),
          "caffe": row(40 * 64 / 69.2)}
    cpu = {"train": [bn], "net": []}
    lines = "\n".join(report_md.goals(cpu, None, {"reference": "caffe", "iters": 30,
                                                  "tolerance": 1e-3, "faithful_max_relative": 2e-5,
                                                  "faithful_within_tolerance": True}))
    assert "| faithful BN net, full iterations ≥ 85% of the fp32 GEMM peak | 90.0 of 100.0 " \
           "GFLOP/s = 90% | **yes** |" in lines
    assert "150.0 of 240.0 GFLOP/s = 62% | **no** |" in lines
    assert "| fast never slower than faithful (full iterations) | bn 1.67× | **yes** |" in lines
    # fast engine at 150 against plain fast at 160: 94%, so the ≥ 100% goal is not met
    assert "bn fast (iterations) 94% | **no** |" in lines
    assert "faithful 2.25×, fast 3.75× | **yes** |" in lines
    assert "max 2.0e-05 | **yes** |" in lines
    assert "not measured: no GPU in the session that wrote this file | — |" in lines


def test_long_run_section_from_the_recorded_figures():
    record = json.load(open(os.path.join(common.ROOT, "results", "bench", "long_run.json")))
    text = "\n".join(report_md.long_run_lines(record))
    assert f"{record['iterations']:,} iterations in one process" in text
    assert f"| RSS | {record['rss_start_mib']:.1f} MiB" in text
    assert f"{record['rss_growth_second_half_mib']:+.1f} MiB" in text
    assert "Not measured yet" in "\n".join(report_md.long_run_lines(None))


def test_an_interrupted_run_renders_what_it_measured_and_says_what_is_missing(tmp_path):
    machine = {"cpu": "Test CPU", "cores": 2, "flags": ["avx2"], "gpu": "none", "python": "3.11",
               "torch": "2.x", "platform": "Linux"}
    cpu = {"date": "2026-12-01T04:00", "machine": machine, "clock": "wall", "threads": 2,
           "minutes": 3.0, "load_start": 0.1, "load_end": 0.2,
           "missing": ["scaling", "profile", "compile"]}
    text = report_md.markdown(cpu, None, str(tmp_path))
    assert "Incomplete: the run was stopped before it measured scaling, profile, compile." in text
    assert "Test CPU, 2 cores" in text
    cpu["parts_dates"] = {"peak": "2026-12-01T04:50", "net": "2026-12-01T04:50",
                          "lmdb": "2026-12-01T04:20"}
    assert ("Measured in several runs (`run_all.py --parts`; the minutes above are the last run's): "
            "lmdb at 2026-12-01 04:20; peak, net at 2026-12-01 04:50.") in report_md.markdown(
                cpu, None, str(tmp_path))
