# memhil: the two commands a newcomer needs are `make demo` and `make test`.
# Both set the machine up first (idempotent) and build the firmware.

VENV    := .venv
PY      := $(VENV)/bin/python
OUT     ?= out
ENGINE  ?= qemu
JOBS    ?= 2
STAMP   := $(VENV)/.memhil-installed

.PHONY: all setup firmware test pytest robot demo docs clean

all: test

$(STAMP): pyproject.toml scripts/setup.sh
	./scripts/setup.sh

setup: $(STAMP)
	@./scripts/setup.sh >/dev/null

firmware: setup
	$(MAKE) -C firmware -j$(JOBS)

pytest: firmware
	$(PY) -m pytest -q tests

# The product's own acceptance suites, run in parallel with pabot on the chosen engine.
robot: firmware
	$(PY) -m memhil.cli run robot-tests --engine $(ENGINE) --processes $(JOBS) --outdir $(OUT)/robot-test

test: pytest robot

demo: firmware
	$(PY) -m memhil.cli demo --engine $(ENGINE) --outdir $(OUT)

clean:
	$(MAKE) -C firmware clean
	rm -rf $(OUT)
