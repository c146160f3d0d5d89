# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every plugin, and the example third-party package under docs/examples (installed the way a user would).
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml)) $(wildcard docs/examples/*/pyproject.toml)
STAMP := $(VENV)/.installed

# torch is chosen here and only here: the packages ask for torch>=2.1 and keep whatever torch is installed.
# A torch already in $(VENV) is kept. Otherwise: with an NVIDIA GPU (`nvidia-smi -L` lists one), PyPI's
# build, which bundles the CUDA libraries; without one, the CPU-only build from $(TORCH_CPU_INDEX), or
# PyPI's where that index cannot be reached. The `torch:` line it prints says which (docs/install.md).
TORCH := torch==2.14.1 torchvision==0.29.1
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
# The installed torch and torchvision as pip constraints (`torch==2.13.0+cpu`), however they were installed.
KEEP_TORCH := import importlib.metadata as m; names = {d.metadata['Name'] for d in m.distributions()}; \
  print('\n'.join(f'{d}=={m.version(d)}' for d in ('torch', 'torchvision') if d in names))
REACHABLE = $(BIN)/python -c "import urllib.request as u; u.urlopen('$(1)', timeout=15)" >/dev/null 2>&1

.PHONY: install wheels demo demo-hard test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
	  echo "torch: keeping the installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	elif nvidia-smi -L >/dev/null 2>&1; then \
	  echo "torch: an NVIDIA GPU is here: $(TORCH) from PyPI (the CUDA build)"; \
	  $(BIN)/pip install -q $(TORCH); \
	elif $(call REACHABLE,$(TORCH_CPU_INDEX)/torch/); then \
	  echo "torch: no NVIDIA GPU: $(TORCH), the CPU-only build from $(TORCH_CPU_INDEX)"; \
	  $(BIN)/pip install -q --index-url $(TORCH_CPU_INDEX) $(TORCH); \
	else \
	  echo "torch: no NVIDIA GPU, and $(TORCH_CPU_INDEX) cannot be reached: $(TORCH) from PyPI, which bundles CUDA libraries (about 4 GB)"; \
	  $(BIN)/pip install -q $(TORCH); \
	fi
	@# Whatever torch is there stays: the plugins' own requirements are lower bounds, and this holds it.
	$(BIN)/python -c "$(KEEP_TORCH)" > $(VENV)/keep-torch.txt
	$(BIN)/pip install -q -c $(VENV)/keep-torch.txt -e '.[dev]' $(foreach p,$(PLUGINS),-e '$(patsubst %/,%,$(dir $(p)))$(if $(shell grep -s '^test = ' $(p)),[test])')
	@# The browser test of report.html needs Chromium: installed where it can be (root, apt), else skipped.
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: chromium is not installed; tests/test_report_browser.py will be skipped"
	@# The fashion world's real images (Fashion-MNIST, Debian's dataset-fashion-mnist): the same way, else a note.
	@[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; }; } || \
	  echo "note: dataset-fashion-mnist is not installed; fashion-real and its tests need it (or TRAINPROVE_FASHION_MNIST=<folder of the four IDX files>)"
	touch $(STAMP)

# A wheel of trainprove and of every plugin, in dist/: `pip install --find-links dist 'trainprove[all]'`
# installs them anywhere (docs/install.md). Built in isolation, as pip builds them for a user.
wheels:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip wheel -q --no-deps -w dist . $(dir $(wildcard plugins/*/pyproject.toml))

demo: $(STAMP)
	$(BIN)/trainprove demo

demo-hard: $(STAMP)
	$(BIN)/trainprove demo --hard

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check trainprove_core plugins tests bench

clean:
	rm -rf $(VENV) runs dist
