# Quick start on a fresh Debian machine:  make demo   |   make test
# Each target does its own set-up: system packages (when root and missing), .venv, pip.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests and the demo use: packet tools for cross-checks and the
# tshark backend; namespaces, nftables and the real daemons of the network lab (tests/lab/).
SYS_CMDS := tcpdump:tcpdump tshark:tshark ip:iproute2 nft:nftables ethtool:ethtool \
	sshd:openssh-server ssh:openssh-client rsyslogd:rsyslog nginx:nginx curl:curl \
	chromium:chromium dot:graphviz

.PHONY: demo test sysdeps venv bench clean fuzz fuzz-smoke azurite

FUZZ_TARGETS := capture_fast capture_core capture_scapy inventory logs
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 2000

sysdeps:
	@missing=""; \
	for pair in $(SYS_CMDS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv python3-pip"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "not root: missing system packages:$$missing (tests that need them are skipped)"; fi; \
	fi

# `pip install -e` also compiles the capture core (setup.py: Cython, gcc, Python headers);
# a change to setup.py or any .pyx rebuilds it.
$(BIN)/.installed: pyproject.toml setup.py $(wildcard capture/*.pyx capture/*.pxd)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fleet]'
	touch $@

venv: $(BIN)/.installed

demo: sysdeps venv
	$(BIN)/egresslens demo

# Azurite (the Azure Storage emulator, npm) for the store tests; they skip without node.
AZURITE := .cache/azurite/node_modules/.bin/azurite-blob
azurite:
	@if [ -x $(AZURITE) ]; then :; elif command -v npm >/dev/null 2>&1; then \
	  npm install -s --no-audit --no-fund --prefix .cache/azurite azurite; \
	else echo "npm missing: the Azurite tests are skipped"; fi

test: sysdeps venv azurite
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Each target for FUZZ_SECONDS; the corpus grows in fuzz/corpus/<target>/, crashes land in
# fuzz/crashes/ (see fuzz/README.md for turning one into a regression test).
fuzz: venv
	@for t in $(FUZZ_TARGETS); do echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python fuzz/fuzz_$$t.py -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 || exit 1; done

# What CI runs (also as tests/test_fuzz_smoke.py): FUZZ_RUNS inputs per target.
fuzz-smoke: venv
	@for t in $(FUZZ_TARGETS); do echo "== fuzz_$$t ($(FUZZ_RUNS) inputs)"; \
	  $(BIN)/python fuzz/fuzz_$$t.py -atheris_runs=$(FUZZ_RUNS) -timeout=30 || exit 1; done

bench: sysdeps venv
	$(BIN)/python bench/bench_capture.py

clean:
	rm -rf $(VENV) build *.egg-info bench/out capture/_*.c capture/*.so
