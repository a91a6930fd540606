"""Caffe's log-line format: glog prefix and C++ ostream numbers."""
import datetime
import re

from bnface_caffe.formats.glog import Glog, cpp_number, format_line, message_of, parse_prefix


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


def test_prefix_parses_back_with_and_without_the_year():
    when = datetime.datetime(2026, 2, 28, 23, 59, 1, 500000)
    line = format_line("I", "solver.cpp:239", "Iteration 1", now=when, thread_id=7)
    assert parse_prefix(line, 2026) == (when, False)
    assert parse_prefix("I20240229 01:02:03.5 99 x.cpp:1] m", 1999) == (
        datetime.datetime(2024, 2, 29, 1, 2, 3, 500000), True)
    # a 29 February without a year, in a year that has none, reads as 1 March
    assert parse_prefix("I0229 01:02:03.000001 9 x.cpp:1] m", 2026)[0].month == 3
    assert parse_prefix("no prefix here", 2026) is None
    assert message_of(line) == "Iteration 1" and message_of("plain text") == "plain text"


def test_glog_environment_switches(tmp_path, capsys):
    quiet = Glog.from_environment("tool", environ={"GLOG_minloglevel": "1"})
    quiet.info("a.cpp:1", "dropped")
    quiet.warning("a.cpp:2", "kept")
    err = capsys.readouterr().err
    assert "dropped" not in err and "a.cpp:2] kept" in err
    logged = Glog.from_environment("tool", environ={"GLOG_log_dir": str(tmp_path)})
    logged.stderr = False
    logged.info("a.cpp:3", "to the file")
    logged.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "tool.INFO" and re.match(r"tool\.[^.]+\.[^.]+\.log\.INFO\.\d{8}-\d{6}\.\d+$", files[1])
    assert "a.cpp:3] to the file" in (tmp_path / "tool.INFO").read_text()
    to_stderr = Glog.from_environment("tool", environ={"GLOG_log_dir": str(tmp_path / "x"),
                                                       "GLOG_logtostderr": "1"})
    assert not to_stderr.sinks and not (tmp_path / "x").exists()


def test_quiet_keeps_files_whole_but_stderr_to_warnings(tmp_path, capsys):
    log = Glog(stderr=True, stderr_level=1)
    log.add_file(str(tmp_path / "run.log"))
    log.info("a.cpp:1", "info line")
    log.error("a.cpp:2", "error line")
    log.close()
    err = capsys.readouterr().err
    assert "info line" not in err and "error line" in err
    text = (tmp_path / "run.log").read_text()
    assert "info line" in text and text.splitlines()[1].startswith("E")
