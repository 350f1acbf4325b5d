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
# llama.cpp is built for this CPU, as people build it from source (see the script for AMX).
ENGINE_CFLAGS := $(shell bash scripts/engine-cflags.sh)
export CFLAGS := $(ENGINE_CFLAGS)
export CXXFLAGS := $(ENGINE_CFLAGS)
# The paper's five devices (datasheet profiles): the committed baseline results/ covers these.
BASELINE_DEVICES := rpi5,jetson-orin-nano-super,m1-pro,rtx3070ti-laptop,rtx3090
PROFILE := devices/this-machine.json
ENGINE_PROFILE := devices/this-machine-llamacpp.json

.PHONY: run test build setup bench baseline calibrate validate reproduce fmt lint

# libtorch only when the build wants it: `make build FEATURES=llamacpp` on a platform PyPI has
# no torch wheel for.
setup:
	@$(if $(findstring torch,$(FEATURES)),bash scripts/setup-libtorch.sh $(if $(filter cuda,$(ON)),--cuda),true)
	@bash scripts/setup-engine.sh

build: setup
	$(CARGO) build --release --features $(FEATURES)

# The main job: the ~1B search space on a built-in device, then on this machine calibrated now.
run: build
	$(BIN) search search-spaces/around-1b.toml --device rpi5 --out target/run/around-1b/rpi5 --per-layer
	$(BIN) calibrate --on $(ON) --out $(PROFILE)
	$(BIN) search search-spaces/around-1b.toml --device $(PROFILE) --out target/run/around-1b/this-machine

# Tests build in release: they share the engine and libtorch builds with `build`, and the timed
# engine tests need optimised code.
test: build
	$(CARGO) test --release --all-targets --features $(FEATURES)
	# The stubs: a build without the engines answers their commands with how to build them.
	$(CARGO) test --test tests -- torch:: llamacpp::
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out target/batch-check --check results
	# The platforms not here: wheel resolution per platform, llama.cpp backend features.
	bash scripts/test-platforms.sh

# Calibrate this machine (about 30 s), then validate against real decoder layers back to back,
# so both see the same machine state; the table goes to results/validation.csv.
calibrate: build
	$(BIN) calibrate --on $(ON) --out $(PROFILE)

validate: calibrate
	$(BIN) validate --on $(ON) --device $(PROFILE) --out results/validation.csv

# Refresh the committed baseline after an intended change (then review the diff).
baseline: build
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out results

bench: setup
	$(CARGO) bench --bench scoring
	/usr/bin/time -f "10.7M-candidate search: %e s, peak RSS %M KB" $(BIN) search benches/spaces/ten-million.toml --device rtx3090 --out target/bench/ten-million

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features $(FEATURES) -- -D warnings

# The paper's experiments with correct accounting: results/paper/{*.csv,*.svg,REPRODUCTION.md}.
reproduce: build
	$(BIN) reproduce --out results/paper
