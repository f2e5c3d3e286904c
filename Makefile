# `make demo` runs the main job, `make test` the test suite; both build .venv when absent.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := alsa-utils fillets-ng-data-nl fillets-ng-data mate-backgrounds plasma-workspace-wallpapers codec2 opus-tools
export OMP_NUM_THREADS ?= 2

.PHONY: demo test test-fast debs venv clean

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PY) -m venv $(VENV)
	# torch first, exactly pinned (torchaudio 2.9 needs torch 2.9 alongside)
	$(BIN)/pip install --quiet torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

debs:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

demo: $(STAMP) debs
	$(BIN)/python -m zoo demo --out demo_out

# the test machine has no route to the model hubs: fail fast instead of waiting for time-outs
test: $(STAMP) debs
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not multiproc"

clean:
	rm -rf $(VENV) demo_out
