"""Caffe's log-line format: glog prefix and C++ ostream numbers."""
import datetime
import re

from bnface_caffe.formats.glog import Glog, cpp_number, format_line


def test_numbers_print_like_cpp_ostream_six_significant_digits():
    # What `std::cout << float(x)` prints for these values.
    assert [cpp_number(x) for x in (0.0099256512, 1e-05, 7.8125e-07, 0.055, 100.0, 123456789.0)] == \
        ["0.00992565", "1e-05", "7.8125e-07", "0.055", "100", "1.23457e+08"]
    assert cpp_number(float("nan")) == "nan" and cpp_number(float("-inf")) == "-inf"


def test_prefix_is_glogs_with_a_right_aligned_thread_id():
    when = datetime.datetime(2026, 11, 9, 10, 34, 34, 280992)
    assert format_line("I", "solver.cpp:219", "Iteration 0", now=when, thread_id=9709) == \
        "I1109 10:34:34.280992  9709 solver.cpp:219] Iteration 0"


def test_glog_writes_every_line_to_each_added_file(tmp_path, capsys):
    log = Glog(stderr=False)
    log.add_file(str(tmp_path / "a.log"))
    log.info("solver.cpp:218", "Iteration 5, loss = 1.5")
    log.warning("caffe.cpp:190", "careful")
    log.close()
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert re.match(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ solver\.cpp:218\] Iteration 5, loss = 1\.5$", lines[0])
    assert lines[1].startswith("W") and lines[1].endswith("caffe.cpp:190] careful")
    assert capsys.readouterr().err == ""
