# Benchmarks: benchmarks/run.py measures a 5 sync x 3 store cluster and its
# peers (PySyncObj, and etcd when the etcd binary is installed), writes
# benchmarks/results/cluster.json and regenerates docs/benchmarks.md, its
# pt-BR twin and docs/benchmarks.svg. See docs/benchmarks.md.
#   make bench                          the full run (about 8 minutes, plus the wait for a quiet machine)
#   make bench BENCH_ARGS='--no-peers --seconds 3 --repetitions 3'

.PHONY: bench

BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	@command -v etcd >/dev/null 2>&1 || echo "note: no etcd binary on PATH, so the etcd peer is skipped (Debian package etcd-server)"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)
