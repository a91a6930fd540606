# bnface-caffe: every entry point. `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install graphviz caffe-env test demo reproduce reference study lmdb bench bench-gpu proto nets solvers lrplot clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,onnx]'
	touch $@

test: $(STAMP) graphviz
	$(PY) -m pytest -q

# Graphviz's `dot` program for tools/draw_net.py's PNG/SVG (pydot comes with the test extra).
# Installed from Debian when it can be (root with apt-get); otherwise those tests skip.
graphviz:
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && { apt-get install -y -q graphviz >/dev/null 2>&1 \
	         || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1; }; }; } \
	    || echo "graphviz: the dot program is not installed; draw_net's image tests will be skipped"

# A venv next to a distribution's pycaffe (built for the system Python and numpy 1.x, which
# the default .venv's numpy 2 cannot import): the system site-packages stay visible (Debian's
# python3-caffe-cpu, or put a Caffe build's python/ on PYTHONPATH), numpy is pinned below 2.
# Then: $(CAFFE_VENV)/bin/python tools/train.py SOLVER --backend caffe. No Caffe needed to build.
CAFFE_PYTHON ?= /usr/bin/python3
CAFFE_VENV   ?= .venv-caffe
caffe-env: $(CAFFE_VENV)/.installed

$(CAFFE_VENV)/.installed: pyproject.toml setup.py constraints.txt constraints-caffe.txt
	test -x $(CAFFE_VENV)/bin/python || $(CAFFE_PYTHON) -m venv --system-site-packages $(CAFFE_VENV)
	$(CAFFE_VENV)/bin/python -m pip install -q --upgrade pip
	grep -vE '^(numpy|opencv-python-headless)==' constraints.txt > $(CAFFE_VENV)/constraints.txt
	cat constraints-caffe.txt >> $(CAFFE_VENV)/constraints.txt
	$(CAFFE_VENV)/bin/python -m pip install -q -c $(CAFFE_VENV)/constraints.txt -e .
	$(CAFFE_VENV)/bin/python -c "import numpy, bnface_caffe; assert numpy.__version__ < '2', numpy.__version__"
	touch $@

# The main job: the paper's five runs on the built-in synthetic identities, on the CPU
# (about 11 minutes on 2 cores); DEMO_FAST=1 is the same pipeline in about a minute.
demo: $(STAMP)
	$(PY) tools/reproduce.py $(if $(DEMO_FAST),fast,demo)

# Full paper widths on a bigger built-in set, or DATA=/path/to/faces (one folder per
# person); GPU=0 trains on that GPU. Hours on a CPU.
reproduce: $(STAMP)
	$(PY) tools/reproduce.py reproduce $(if $(DATA),--data $(DATA)) $(if $(GPU),--gpu $(GPU))

# What drives the paper's result: seeds, scale and ablations, 3 seeds per cell (about 80 minutes
# on a quiet 2-core CPU; `python tools/reproduce.py study --list` shows the plan);
# STUDY_QUICK=1 is the same pipeline at toy size (seconds). Writes results/study/.
study: $(STAMP)
	$(PY) tools/reproduce.py study $(if $(STUDY_QUICK),--quick)

# The built-in faces (or DATA=/path/to/faces) as Caffe LMDBs in data/lmdb/, where the
# committed prototxt/ point.
lmdb: $(STAMP)
	$(PY) tools/build_lmdb.py $(if $(DATA),$(DATA),--synthetic) data/lmdb --overwrite

# Benchmarks of every issue; writes BENCHMARKS.md (machine, date, figures) and bench/figures/.
# Real Caffe's rows need `caffe` on PATH or CAFFE=/path/to/caffe. About 30 minutes on 2 quiet cores.
bench: $(STAMP)
	$(PY) bench/run_all.py -o BENCHMARKS.md $(if $(CAFFE),--caffe $(CAFFE)) $(BENCH_ARGS)   # BENCH_ARGS=--skip-long-run when short of time

# On a machine with a CUDA GPU (and a CUDA build of torch): the CUDA tests and BENCHMARKS.md's
# GPU rows, under 8 minutes.
bench-gpu: $(STAMP)
	bash bench/gpu.sh

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
