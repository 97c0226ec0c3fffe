# Two commands for a fresh machine: `make test` (the whole suite) and `make run` (the daemon
# with embedded defaults). Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GOVMOMI_SIM := /usr/share/gocode/src/github.com/vmware/govmomi/simulator

.PHONY: test run bootstrap bench lint format system-deps runtime-deps venv clean

# qemu-img converts and verifies disks (the daemon needs it too); virt-xml-validate
# (libvirt-clients) checks each libvirt domain written and osinfo-db says which guest OSes have
# virtio drivers (the daemon needs both for -libvirt). Go and govmomi build the vSphere
# simulator the tests talk to; curl is the benchmark's reference; chromium runs the browser
# tests (driven by Playwright, whose own browser download cannot work here); the fault tests
# stop and restart a redis-server of their own. The boot tests build two tiny guests
# (tests/guests/build.py: fdisk's sfdisk, dosfstools, mtools, syslinux, systemd-boot's EFI stub,
# binutils' objcopy; the kernel and busybox are downloaded, not installed) and boot them in
# qemu-system-x86 with SeaBIOS or OVMF.
system-deps: WANT_TEST_TOOLS = 1
system-deps runtime-deps:
	@missing=""; \
	command -v qemu-img >/dev/null || missing="$$missing qemu-utils"; \
	[ -x /usr/bin/virt-xml-validate ] || missing="$$missing libvirt-clients"; \
	[ -d /usr/share/osinfo/os ] || missing="$$missing osinfo-db"; \
	if [ -n "$(WANT_TEST_TOOLS)" ]; then \
		command -v go >/dev/null || missing="$$missing golang-go"; \
		[ -d $(GOVMOMI_SIM) ] || missing="$$missing golang-github-vmware-govmomi-dev"; \
		command -v curl >/dev/null || missing="$$missing curl"; \
		[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
		command -v redis-server >/dev/null || missing="$$missing redis-server"; \
		command -v qemu-system-x86_64 >/dev/null || missing="$$missing qemu-system-x86"; \
		[ -f /usr/share/qemu/firmware/60-edk2-x86_64.json ] || missing="$$missing ovmf"; \
		[ -x /usr/sbin/sfdisk ] || missing="$$missing fdisk"; \
		[ -x /usr/sbin/mkfs.vfat ] || missing="$$missing dosfstools"; \
		command -v mcopy >/dev/null || missing="$$missing mtools"; \
		command -v syslinux >/dev/null || missing="$$missing syslinux"; \
		[ -f /usr/lib/syslinux/mbr/mbr.bin ] || missing="$$missing syslinux-common"; \
		[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || missing="$$missing systemd-boot-efi"; \
		command -v objcopy >/dev/null || missing="$$missing binutils"; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-test.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The suite runs on SQLite + an embedded Redis, spread over TEST_PROCESSES pytest processes
# (pytest-xdist, a test file at a time, the longest files first: LONGEST_FIRST in
# tests/conftest.py); at the same time, the tests whose behaviour can differ on PostgreSQL +
# Redis (the services CI machines run) run there: `ON_POSTGRESQL` in tests/conftest.py says
# which and why. Side by side because the passes mostly wait (on workers, the simulator,
# timeouts) and share nothing: each process its own database, Redis, simulator, temporary
# directory and free ports. The Go test servers are built first, once. The PostgreSQL pass's
# output is printed after the SQLite pass's; `make test PYTEST_ARGS=--durations=30` shows where
# the time goes in each (TEST_PROCESSES=0: the SQLite pass in this one process, as before).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_PROCESSES ?= 2
PYTEST_ARGS ?=
PG_LOG := var/test-postgresql.log

test: system-deps venv lint
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -c "from tests.vsphere_sim import harness; harness.build_simulator(); harness.build_ovf_checker()"
	@start=$$SECONDS; \
	( DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) PATH="$(CURDIR)/$(BIN):$$PATH" \
	  $(BIN)/pytest -p no:cacheprovider -m backend $(PYTEST_ARGS) > $(PG_LOG) 2>&1; status=$$?; \
	  echo "PostgreSQL + Redis pass: $$((SECONDS - start)) s" >> $(PG_LOG); exit $$status ) & pg=$$!; \
	env -u DATABASE_URL -u REDIS_URL PATH="$(CURDIR)/$(BIN):$$PATH" \
	  $(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); sqlite=$$?; \
	echo "SQLite + embedded Redis pass: $$((SECONDS - start)) s"; \
	wait $$pg; postgresql=$$?; \
	echo "== PostgreSQL + Redis pass (-m backend), from $(PG_LOG):"; cat $(PG_LOG); \
	[ $$sqlite = 0 ] && [ $$postgresql = 0 ]

# Every benchmark runs even if one misses its target; the summary table ends the run and its
# exit status says whether every target was met.
BENCH_RESULTS := var/bench-results.jsonl
BENCHES := export parallel api lists inventory dashboard_ws webhooks load cli_startup

bench: system-deps venv
	@mkdir -p var && rm -f $(BENCH_RESULTS); status=0; \
	for bench in $(BENCHES); do \
		echo "== bench/$$bench.py"; \
		BENCH_RESULTS=$(BENCH_RESULTS) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/$$bench.py || status=1; \
	done; \
	$(BIN)/python bench/summary.py $(BENCH_RESULTS) || status=1; \
	exit $$status

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The daemon with embedded defaults (SQLite + Redis in $HYPERSDK_DATA_DIR, default ./var):
# migrate, create the admin user once (its password and API token are printed that once), serve.
.PHONY: run bootstrap
bootstrap: runtime-deps venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_admin

run: bootstrap
	exec $(BIN)/python manage.py hypervisord

clean:
	rm -rf $(VENV) var .pytest_cache
