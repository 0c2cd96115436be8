# The two commands: `make run` (demo study end to end) and `make test` (the test suite).
# Both create the virtual environment .venv on first use (Python >= 3.10 as `python3`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)

CORES ?= all
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test test-cluster env dry-run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m voxelyte.jit
	touch $(STAMP)

env: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) $(SNAKEMAKE_ARGS)
	@echo "voxelyte: demo study done; results in results/demo/ (provenance: results/demo/provenance.json)"
	@echo "voxelyte: study report: $(abspath results/demo/report.html)"

dry-run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) -n $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A real one-node SLURM cluster on this machine (root, Debian apt): the study through sbatch,
# numbers compared with a local run. Installs slurm + munge when absent; stops what it started.
test-cluster: $(STAMP)
	PYTHON=$(BIN)/python bash tests/cluster/run_slurm_demo.sh

clean:
	rm -rf results .snakemake
