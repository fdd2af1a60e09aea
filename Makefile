# Portcullis: `make run` sets up and starts the local mesh, `make test` runs the suite.
# Both install whatever is missing first: a virtualenv in .venv, the pinned packages and
# the Python code generated from protos/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GENERATED := gen/.generated

.PHONY: setup compiled run test test-unit test-integration test-integration-tls bench bench-tools protos clean

setup: $(INSTALLED) $(GENERATED) compiled

# authz_server's hot modules compiled with mypyc into build/compiled (nothing when up to
# date; pure Python, with a warning, where there is no C compiler). A build whose sources
# changed is never loaded, so editing a .py needs no step; `make compiled` rebuilds.
compiled: $(INSTALLED) $(GENERATED)
	$(PY) -m authz_server.compiled.build

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,compiled]'
	$(PY) -c "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], 'portcullis-gen.pth').write_text(str(pathlib.Path('gen').resolve()) + '\n')"
	touch $@

$(GENERATED): $(INSTALLED) $(PROTOS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -I protos \
		-I $$($(PY) -c "import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto'))") \
		--python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

protos: $(GENERATED)

run: setup
	$(PY) -m mesh

# The integration tests with every mesh on PORTCULLIS_TLS=auto (local CA, TLS on every
# hop; tests/integration/endpoints.py): `make test` runs these modules a second time so,
# a minute or two; `make test-integration-tls` runs all of them, and the CLI's, on TLS.
TLS_MODULES := tests/integration/test_explain.py tests/integration/test_backend_jwt.py \
	tests/integration/test_oauth_jwt.py tests/integration/test_metrics.py \
	tests/integration/test_gateway_api_keys.py tests/integration/test_gateway_nack.py

# The compiled modules' own tests also run on their pure-Python source (PORTCULLIS_COMPILED=off),
# the code that runs wherever there is no C compiler.
PURE_MODULES := tests/authz_server tests/hostile/test_h2_frames.py tests/hostile/test_check_servicer_api_keys.py \
	tests/hostile/test_h2_malformed_requests.py tests/hostile/test_h2_continuation_flood.py

test: setup
	$(PY) -m pytest
	PORTCULLIS_TEST_TLS=1 $(PY) -m pytest $(TLS_MODULES)
	PORTCULLIS_COMPILED=off $(PY) -m pytest $(PURE_MODULES)

test-unit: setup
	$(PY) -m pytest -m "not integration"

test-integration: setup
	$(PY) -m pytest -m integration

test-integration-tls: setup
	PORTCULLIS_TEST_TLS=1 $(PY) -m pytest -m integration
	PORTCULLIS_TEST_TLS=1 $(PY) -m pytest tests/cli

# Benchmarks (never part of `make test`): h2load and wrk from Debian when missing, py-spy
# (profiling) from the `bench` extra, then every part; results in bench/results/latest.*.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--seconds 10 --scale 1".
BENCH_INSTALLED := $(VENV)/.bench-installed
BENCH_ARGS ?=

$(BENCH_INSTALLED): pyproject.toml $(INSTALLED)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

bench-tools:
	@if ! command -v h2load >/dev/null || ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk nghttp2-client; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq wrk nghttp2-client; fi; \
	fi

bench: setup $(BENCH_INSTALLED) bench-tools
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) gen var build
