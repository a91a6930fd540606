"""Caffe's shape arithmetic, worked out by hand: counts, axes, conv/deconv/pool output sizes."""
import pytest

from bnface_caffe.shapes import (canonical_axis, conv_output_size, count, deconv_output_size,
                                 pool_output_size, shape_string)


def test_count_and_shape_string():
    assert count((64, 32, 50, 50)) == 5120000 and count((2, 3, 4), 1) == 12
    assert count((2, 3, 4), 0, 2) == 6 and count(()) == 1
    assert shape_string((64, 32, 50, 50)) == "64 32 50 50 (5120000)"
    assert shape_string(()) == "(1)"


def test_canonical_axis_counts_negative_axes_from_the_end():
    assert canonical_axis(-1, 4) == 3 and canonical_axis(1, 4) == 1
    assert canonical_axis(4, 4) is None and canonical_axis(-5, 4) is None
    assert canonical_axis(0, 0) == 0   # a 0-axis blob still has axis 0 for Caffe's checks


def test_deconv_output_size_inverts_conv():
    assert deconv_output_size(25, 4, 2, 1) == 50 and conv_output_size(50, 4, 2, 1) == 25
    assert deconv_output_size(7, 3, 1, 0, dilation=2) == 11


@pytest.mark.parametrize("size, kernel, stride, pad, expected", [
    (50, 2, 2, 0, 25), (25, 2, 2, 0, 13), (13, 2, 2, 0, 7), (7, 7, 1, 0, 1),
    (6, 7, 1, 0, 0),            # the 7x7 pool does not fit floor-mode's 6x6
    (112, 3, 2, 0, 56),         # ceil((112-3)/2)+1 = 56 (floor mode: 55)
    (5, 3, 2, 1, 3),            # ceil(4/2)+1 = 3; clip test (3-1)*2=4 < 5+1 keeps it
    (6, 2, 2, 1, 4),            # ceil(6/2)+1 = 4; (4-1)*2 = 6 < 7 keeps it
    (4, 3, 3, 1, 2),            # ceil(3/3)+1 = 2; (2-1)*3 = 3 < 5 keeps it
    (5, 2, 3, 1, 2),            # ceil(5/3)+1 = 3; (3-1)*3 = 6 >= 5+1 -> clipped to 2
])
def test_pool_output_size_is_caffes_ceil_formula_with_clip(size, kernel, stride, pad, expected):
    assert pool_output_size(size, kernel, stride, pad) == expected


def test_floor_mode_would_break_the_paper_net():
    assert [pool_output_size(s, 2, 2, ceil_mode=False) for s in (50, 25, 12)] == [25, 12, 6]


def test_conv_output_size_3x3_pad1_keeps_size():
    assert conv_output_size(50, 3, 1, 1) == 50 and conv_output_size(7, 3, 2, 0) == 3




def test_conv_output_size_truncates_toward_zero_like_cpp():
    # (2 - 3) / 2 is 0 in C++ (-1 with floor division): one output, its window past the end
    assert conv_output_size(2, 3, 2) == 1 and conv_output_size(2, 4, 2) == 0
    assert conv_output_size(1, 3, 3, dilation=1) == 1 and conv_output_size(4, 5) == 0
