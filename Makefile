# bnface-caffe: every entry point. `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test demo proto nets solvers lrplot clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

# Regenerate the committed schema module (needs grpcio-tools, a test dependency).
proto: $(STAMP)
	$(PY) -m bnface_caffe.proto.regenerate

# The committed prototxt/ and solvers/ (a test fails when they are stale).
nets: $(STAMP)
	$(PY) -m bnface_caffe.generated nets
solvers: $(STAMP)
	$(PY) -m bnface_caffe.generated solvers

# The four paper schedules over their max_iter.
lrplot: $(STAMP)
	$(PY) tools/plot_lr.py solvers/original.prototxt solvers/long_step.prototxt \
	    solvers/short_step.prototxt solvers/multistep.prototxt -o results/lr_schedules.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
