# rooflinebench: `make run` runs the main job, `make test` runs every test. Both set up what
# they need (libtorch wheels into .libtorch/ for the `torch` feature) on a fresh machine.

CARGO ?= cargo

.PHONY: run test build setup bench fmt lint

setup:
	@bash scripts/setup-libtorch.sh

build:
	$(CARGO) build --release

run: build
	./target/release/rooflinebench analyze --model models/Llama-3.2-1B.json --device rpi5 --scenario siso

test:
	$(CARGO) test --all-targets

bench:
	$(CARGO) bench --bench scoring

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
