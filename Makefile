# rooflinebench: `make run` runs the main job, `make test` runs every test. Both set up what
# they need on a fresh machine (Rust crates; libtorch wheels into .libtorch/ for calibration).

CARGO ?= cargo
BIN := target/release/rooflinebench
# The paper's five devices (datasheet profiles): the committed baseline results/ covers these.
BASELINE_DEVICES := rpi5,jetson-orin-nano-super,m1-pro,rtx3070ti-laptop,rtx3090

.PHONY: run test build setup bench baseline fmt lint

setup:
	@bash scripts/setup-libtorch.sh

build:
	$(CARGO) build --release

# The main job: the ~1B search space on a built-in device, printing the recommendation.
run: build
	$(BIN) search search-spaces/around-1b.toml --device rpi5 --out target/run/around-1b/rpi5 --per-layer

test: build
	$(CARGO) test --all-targets
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out target/batch-check --check results

# Refresh the committed baseline after an intended change (then review the diff).
baseline: build
	$(BIN) batch search-spaces --devices $(BASELINE_DEVICES) --out results

bench:
	$(CARGO) bench --bench scoring

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
