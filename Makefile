# rooflinebench: `make run` runs the main job, `make test` runs every test. Both set up what
# they need on a fresh machine: Rust crates from crates.io, libtorch 2.13 (PyPI wheels, into
# .libtorch/) and the packages llama.cpp builds with (cmake, libclang; Debian's).

CARGO ?= cargo
BIN := target/release/rooflinebench
# llama.cpp's backend: cpu, or cuda / metal / vulkan (needs the CUDA toolkit, Xcode, the Vulkan
# SDK): `make run ENGINE_BACKEND=cuda`. Every layer then runs on the GPU.
ENGINE_BACKEND ?= cpu
comma := ,
# Where libtorch calibrates and validates: cpu, cuda (installs libtorch's CUDA libraries, about
# 3 GB), mps (Apple silicon) or auto: `make calibrate ON=cuda`.
ON ?= cpu
ifeq ($(filter $(ENGINE_BACKEND),cpu cuda metal vulkan),)
$(error ENGINE_BACKEND=$(ENGINE_BACKEND): expected cpu, cuda, metal or vulkan)
endif
FEATURES := torch,llamacpp$(if $(filter-out cpu,$(ENGINE_BACKEND)),$(comma)llamacpp-$(ENGINE_BACKEND))
# The main binary's: FEATURES without torch.
empty :=
space := $(empty) $(empty)
MAIN_FEATURES := $(subst $(space),$(comma),$(filter-out torch,$(subst $(comma),$(space),$(FEATURES))))
# llama.cpp is built for this CPU, as people build it from source (see the script for AMX).
ENGINE_CFLAGS := $(shell bash scripts/engine-cflags.sh)
export CFLAGS := $(ENGINE_CFLAGS)
export CXXFLAGS := $(ENGINE_CFLAGS)
# The paper's five devices by the names users type (the expected llama.cpp profile where one is
# fitted, rtx3090; the datasheet upper bound otherwise): the committed baseline results/ covers these.
BASELINE_DEVICES := rpi5,jetson-orin-nano-super,m1-pro,rtx3070ti-laptop,rtx3090
PROFILE := devices/this-machine.json
ENGINE_PROFILE := devices/this-machine-llamacpp.json

.PHONY: run test build setup bench bench-python baseline calibrate validate verify-hybrid reproduce profiles llama-bench-check fmt lint python

# libtorch only when the build wants it: `make build FEATURES=llamacpp` on a platform PyPI has
# no torch wheel for.
setup:
	@$(if $(findstring torch,$(FEATURES)),bash scripts/setup-libtorch.sh $(if $(filter cuda,$(ON)),--cuda),true)
	@bash scripts/setup-engine.sh
	@bash scripts/setup-chromium.sh

# Two binaries: rooflinebench without libtorch (every command starts in milliseconds) and
# rooflinebench-torch beside it with libtorch, which the first runs for calibrate and validate.
build: setup
	$(CARGO) build --release --features '$(MAIN_FEATURES)' --bin rooflinebench
	$(if $(findstring torch,$(FEATURES)),$(CARGO) build --release --features $(FEATURES) --bin rooflinebench-torch,true)

# The main job: the ~1B search space on a built-in device, and the ~350M hybrid space (full
# attention against windows, short convolutions, DeltaNet and Mamba2 layers); then this machine calibrated now on
# llama.cpp, the ~135M space searched on that profile, and its picks built and run to see
# prediction and measurement side by side.
run: build
	$(BIN) search search-spaces/around-1b.toml --device rpi5 --out target/run/around-1b/rpi5 --per-layer
	$(BIN) search search-spaces/around-350m-hybrid.toml --device rpi5 --out target/run/around-350m-hybrid/rpi5
	$(BIN) calibrate --engine llama.cpp --quick --out $(ENGINE_PROFILE)
	$(BIN) search search-spaces/around-135m.toml --device $(ENGINE_PROFILE) --out target/run/around-135m/this-machine
	$(BIN) verify target/run/around-135m/this-machine --quick

# Tests build in release: they share the engine and libtorch builds with `build`, and the timed
# engine tests need optimised code.
# ROOFLINEBENCH_REQUIRE_CHROMIUM: the report.html test fails (rather than skips) without chromium.
test: build
	ROOFLINEBENCH_REQUIRE_CHROMIUM=1 $(CARGO) test --release --all-targets --features $(FEATURES)
	# The tests link the main binary with libtorch too: back to the two binaries of `build`.
	$(CARGO) build --release --features '$(MAIN_FEATURES)' --bin rooflinebench
	# The stubs: a build without the engines answers their commands with how to build them.
	$(CARGO) test --test tests -- torch:: llamacpp::
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out target/batch-check --check results
	# Exported configs load in transformers (installed from PyPI into target/hf-venv) as the same model.
	bash scripts/hf-roundtrip.sh $(BIN) results
	# The platforms not here: wheel resolution per platform, llama.cpp backend features.
	bash scripts/test-platforms.sh
	# The Python package (built into target/python-venv), against this binary's output.
	$(MAKE) python
	ROOFLINEBENCH_BIN=$(BIN) $(PYVENV)/bin/python -m pytest -q python/tests

# The Python package (python/, PyO3): maturin and pytest from PyPI into a venv under target/,
# then the wheel built in release and installed there, without the engines. It shares target/
# with cargo, so the crates `build` compiled are reused. `pip install .` builds the same wheel.
PYVENV := target/python-venv
CARGO_TARGET_DIR ?= $(CURDIR)/target
python:
	test -x $(PYVENV)/bin/python || python3 -m venv $(PYVENV)
	test -x $(PYVENV)/bin/maturin || $(PYVENV)/bin/pip install --quiet "maturin>=1.9,<2" pytest
	CARGO_TARGET_DIR=$(CARGO_TARGET_DIR) VIRTUAL_ENV=$(CURDIR)/$(PYVENV) $(PYVENV)/bin/maturin develop --release --quiet

# Calibrate this machine on libtorch (about 30 s) and on llama.cpp (about a minute), then
# validate each against workloads calibration never saw, back to back so both see the same
# machine state. Tables: results/validation.csv (libtorch layers) and
# results/validation-llamacpp.csv (whole llama.cpp models).
calibrate: build
	$(BIN) calibrate --on $(ON) --out $(PROFILE)
	$(BIN) calibrate --engine llama.cpp --out $(ENGINE_PROFILE)

validate: calibrate
	$(BIN) validate --on $(ON) --device $(PROFILE) --out results/validation.csv
	$(BIN) validate --engine llama.cpp --device $(ENGINE_PROFILE) --out results/validation-llamacpp.csv

# The hybrid stacks on llama.cpp here: calibrate (its hybrid probes fit the scan and state
# rates), validate on hybrids calibration never saw (results/validation-llamacpp-hybrid.csv),
# then search the ~350M hybrid space on that profile and verify its picks (about 20 minutes;
# run nothing else meanwhile).
verify-hybrid: build
	$(BIN) calibrate --engine llama.cpp --out $(ENGINE_PROFILE)
	$(BIN) validate --engine llama.cpp --only hybrid --device $(ENGINE_PROFILE) --out results/validation-llamacpp-hybrid.csv
	$(BIN) search search-spaces/around-350m-hybrid.toml --device $(ENGINE_PROFILE) --out target/run/around-350m-hybrid/this-machine
	$(BIN) verify target/run/around-350m-hybrid/this-machine

# Refit the built-in expected profiles (devices/NAME.json) from the public llama-bench runs under
# data/llama-bench/, holding some out to report agreement; rebuild afterwards (they are compiled in).
profiles:
	$(CARGO) build --release --features $(FEATURES)
	bash scripts/fit-expected-profiles.sh $(BIN)
	$(CARGO) build --release --features $(FEATURES)
	bash scripts/transfer-profiles.sh $(BIN)

# devices fit on llama.cpp's own llama-bench here: builds llama-bench, times four real shapes,
# fits two and predicts the other two (about 8 minutes; run nothing else meanwhile).
llama-bench-check: build
	$(BIN) calibrate --engine llama.cpp --out $(ENGINE_PROFILE)
	bash scripts/llama-bench-check.sh $(BIN) $(ENGINE_PROFILE)

# Refresh the committed baseline after an intended change (then review the diff).
baseline: build
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out results

# Criterion's per-candidate figures, then whole searches end to end on rtx3090 (an expected
# profile): the shipped spaces, the 10.7 M uniform and 11.9 M hybrid spaces and the 95 M one,
# as candidates/s per core and peak memory (a few minutes on 2 cores; `make build` first).
bench: setup
	$(CARGO) bench --bench scoring
	bash scripts/bench-search.sh $(BIN) rtx3090 search-spaces/*.toml benches/spaces/throughput.toml \
		benches/spaces/ten-million.toml benches/spaces/hybrid-ten-million.toml benches/spaces/hundred-million.toml \
		benches/spaces/hybrid-hundred-million.toml
	# predict from Python beside the Rust scoring loop, same inputs, same run.
	$(MAKE) bench-python

# The Python package's figures: predict on 2 threads beside the Rust scoring loop on the same
# inputs, in one run (about a minute on 2 cores), and a cold import plus one analyze.
bench-python: python
	$(PYVENV)/bin/python python/bench.py

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features $(FEATURES) -- -D warnings

# The paper's experiments with correct accounting: results/paper/{*.csv,*.svg,REPRODUCTION.md}.
reproduce: build
	$(BIN) reproduce --out results/paper
