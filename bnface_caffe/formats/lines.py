"""A Caffe log line as data: where Caffe logs it (file:line) and its text with holes.

`line(where, template)` makes the writer of one kind of line: `writer(log, *values)` fills
the holes in order, printing floats as C++ ostreams print them (cpp_number) and anything
else with str(), and logs at INFO (or WARNING/ERROR with `severity`). The catalogues
(solver_log, net_log, tool_log) are tables of such writers.
"""
import numbers

from .glog import cpp_number


def _text(value):
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return cpp_number(value)
    return str(value)


def line(where, template, severity="I"):
    def write(log, *values):
        log.write(severity, where, template.format(*(_text(v) for v in values)))
    write.where, write.template = where, template
    return write
