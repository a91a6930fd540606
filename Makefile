# bnface-caffe: every entry point. `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test demo reproduce study lmdb bench proto nets solvers lrplot clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

# The main job: the paper's five runs on the built-in synthetic identities, on the CPU
# (about 13 minutes on 2 cores); DEMO_FAST=1 is the same pipeline in about a minute.
demo: $(STAMP)
	$(PY) tools/reproduce.py $(if $(DEMO_FAST),fast,demo)

# Full paper widths on a bigger built-in set, or DATA=/path/to/faces (one folder per
# person); GPU=0 trains on that GPU. Hours on a CPU.
reproduce: $(STAMP)
	$(PY) tools/reproduce.py reproduce $(if $(DATA),--data $(DATA)) $(if $(GPU),--gpu $(GPU))

# What drives the paper's result: seeds, scale and ablations, 3 seeds per cell (about two
# hours on a quiet 2-core CPU; `python tools/reproduce.py study --list` shows the plan);
# STUDY_QUICK=1 is the same pipeline at toy size (seconds). Writes results/study/.
study: $(STAMP)
	$(PY) tools/reproduce.py study $(if $(STUDY_QUICK),--quick)

# The built-in faces (or DATA=/path/to/faces) as Caffe LMDBs in data/lmdb/, where the
# committed prototxt/ point.
lmdb: $(STAMP)
	$(PY) tools/build_lmdb.py $(if $(DATA),$(DATA),--synthetic) data/lmdb --overwrite

# Benchmarks of every issue; writes BENCHMARKS.md (machine, date, figures).
bench: $(STAMP)
	$(PY) bench/run_all.py -o BENCHMARKS.md

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
	    solvers/short_step.prototxt solvers/multistep.prototxt solvers/early_drop.prototxt \
	    -o results/lr_schedules.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
