# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every plugin, and the example third-party package under docs/examples (installed the way a user would).
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml)) $(wildcard docs/examples/*/pyproject.toml)
STAMP := $(VENV)/.installed

.PHONY: install demo demo-hard test lint clean

install: $(STAMP)

# torch and torchvision are pinned to the CUDA build that also runs on CPUs (timm needs torchvision).
$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]' $(foreach p,$(PLUGINS),-e '$(patsubst %/,%,$(dir $(p)))$(if $(shell grep -s '^test = ' $(p)),[test])')
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

demo: $(STAMP)
	$(BIN)/trainprove demo

demo-hard: $(STAMP)
	$(BIN)/trainprove demo --hard

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check trainprove_core plugins tests bench

clean:
	rm -rf $(VENV) runs
