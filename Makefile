# memhil: the two commands a newcomer needs are `make demo` and `make test`.
# Both set the machine up first (idempotent) and build the firmware.

VENV    := .venv
PY      := $(VENV)/bin/python
OUT     ?= out
ENGINE  ?= qemu
JOBS    ?= 2
STAMP   := $(VENV)/.memhil-installed

# A second QEMU beside Debian's for the tests: bookworm-backports' 10.0.x, unpacked into .cache (scripts/fetch-qemu.sh)
QEMU2   := .cache/qemu-backports/bin/qemu-system-arm

.PHONY: all setup firmware test pytest robot test-qemu2 qemu2 demo docs clean

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

$(QEMU2): scripts/fetch-qemu.sh | setup
	./scripts/fetch-qemu.sh >/dev/null

qemu2: $(QEMU2)

# Every pytest test and the Robot suites again on the second QEMU (MEMHIL_QEMU selects it)
test-qemu2: firmware $(QEMU2)
	@echo "== tests on $$($(QEMU2) --version | head -1)"
	MEMHIL_QEMU=$(abspath $(QEMU2)) $(PY) -m pytest -q tests
	MEMHIL_QEMU=$(abspath $(QEMU2)) $(PY) -m memhil.cli run robot-tests --engine $(ENGINE) --processes $(JOBS) --outdir $(OUT)/robot-test-qemu2

test: pytest robot test-qemu2

demo: firmware
	$(PY) -m memhil.cli demo --engine $(ENGINE) --outdir $(OUT)

clean:
	$(MAKE) -C firmware clean
	rm -rf $(OUT)
