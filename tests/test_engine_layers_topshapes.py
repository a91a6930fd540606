"""tools/time_net.py on a small net using each layer type added for issue 12:
the "Top shape:" lines are Caffe's (shapes worked out by hand from Caffe's rules)."""
import pytest

from bnface_caffe.cli import time_net


def shape_line(*dims):
    n = 1
    for d in dims:
        n *= d
    return "Top shape: " + "".join(f"{d} " for d in dims) + f"({n})"


def inputs(*shapes):
    tops = " ".join(f'top: "in{i}"' for i in range(len(shapes)))
    dims = " ".join("shape { " + " ".join(f"dim: {d}" for d in s) + " }" for s in shapes)
    return f'layer {{ name: "in" type: "Input" {tops} input_param {{ {dims} }} }}\n'


def layer(kind, bottoms, params="", tops=("out",)):
    b = " ".join(f'bottom: "in{i}"' for i in range(bottoms))
    t = " ".join(f'top: "{name}"' for name in tops)
    return f'layer {{ name: "l" type: "{kind}" {b} {t} {params} }}\n'


CASES = {
    "BNLL": ([(2, 3)], layer("BNLL", 1), [(2, 3)]),
    "Clip": ([(2, 3, 4)], layer("Clip", 1, "clip_param { min: -1 max: 1 }"), [(2, 3, 4)]),
    "Exp": ([(2, 3)], layer("Exp", 1, "exp_param { base: 2 }"), [(2, 3)]),
    "Log": ([(2, 3)], layer("Log", 1, "log_param { shift: 1 }"), [(2, 3)]),
    "Swish": ([(5,)], layer("Swish", 1), [(5,)]),
    "Threshold": ([(2, 3)], layer("Threshold", 1), [(2, 3)]),
    "ArgMax": ([(2, 3, 4)], layer("ArgMax", 1, "argmax_param { top_k: 2 }"), [(2, 1, 2)]),
    "ArgMax-values": ([(2, 3, 4)], layer("ArgMax", 1, "argmax_param { out_max_val: true }"),
                      [(2, 2, 1)]),
    "ArgMax-axis": ([(2, 3, 4)], layer("ArgMax", 1, "argmax_param { axis: 1 top_k: 3 }"),
                    [(2, 3, 4)]),
    "BatchReindex": ([(4, 3), (5,)], layer("BatchReindex", 2), [(5, 3)]),
    "Crop": ([(2, 3, 8, 8), (1, 1, 5, 4)], layer("Crop", 2, "crop_param { offset: 1 }"),
             [(2, 3, 5, 4)]),
    "Embed": ([(2, 5)], layer("Embed", 1, "embed_param { num_output: 4 input_dim: 10 }"),
              [(2, 5, 4)]),
    "Filter": ([(4, 3), (4,), (4, 1)], layer("Filter", 3, tops=("a", "b")), [(4, 3), (4,)]),
    "Im2col": ([(2, 3, 5, 5)], layer("Im2col", 1, "convolution_param { kernel_size: 3 "
                                                  "stride: 2 }"), [(2, 27, 2, 2)]),
    "MVN": ([(2, 3)], layer("MVN", 1), [(2, 3, 1, 1)]),
    "Parameter": ([], layer("Parameter", 0, "parameter_param { shape { dim: 3 dim: 4 } }"),
                  [(3, 4)]),
    "Reduction": ([(2, 3, 4)], layer("Reduction", 1, "reduction_param { axis: 1 }"), [(2,)]),
    "Reduction-all": ([(2, 3, 4)], layer("Reduction", 1), [()]),
    "SPP": ([(2, 3, 6, 6)], layer("SPP", 1, "spp_param { pyramid_height: 2 }"), [(2, 15)]),
    "SPP-one": ([(2, 3, 6, 5)], layer("SPP", 1, "spp_param { pyramid_height: 1 }"),
                [(2, 3, 1, 1)]),
    "Tile": ([(2, 3)], layer("Tile", 1, "tile_param { tiles: 2 }"), [(2, 6)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_time_net_top_shapes(case, tmp_path, capsys):
    shapes, text, tops = CASES[case]
    path = tmp_path / "net.prototxt"
    path.write_text('name: "t"\n' + (inputs(*shapes) if shapes else "") + text)
    assert time_net.main([str(path), "--iterations", "1"]) == 0
    err = capsys.readouterr().err
    lines = [line.split("] ", 1)[1] for line in err.splitlines() if "Top shape:" in line]
    assert lines == [shape_line(*s) for s in shapes] + [shape_line(*s) for s in tops]

