"""Glue for the workflow's thin scripts: logging to the rule's log file, thread limits, one clear
message for bad input, the job's provenance record and the atomic writing of its results.
Duck-typed on Snakemake's ``snakemake`` object; never imports it."""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from threadpoolctl import threadpool_limits

from . import contract, provenance
from .errors import InputError

#: Thread pools a job's ``threads`` limits through the environment. Not NUMBA_NUM_THREADS: numba
#: reads it when it is imported (before ``run``), and a later change makes numba refuse to compile
#: any kernel once its threads run; its pool follows the CPUs the job may use (affinity).
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS")


def setup_logging(log_path: str | None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, if given, to the rule's log file (overwritten).

    Parameters
    ----------
    log_path : str or None
        The log file (None: stderr only).
    level : int
        Logging level.

    Returns
    -------
    logging.Logger
        The ``voxelyte`` logger.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return logging.getLogger("voxelyte")


def run(smk: Any, main: Callable[[Any, logging.Logger], None]) -> None:
    """Run a stage's ``main(snakemake, log)``.

    Logs to ``snakemake.log[0]``, honours ``snakemake.threads`` (thread environment variables and
    threadpool limits), and turns :class:`InputError` into one message and exit status 1.

    Parameters
    ----------
    smk : object
        Snakemake's ``snakemake`` object (duck-typed).
    main : callable
        The stage's ``main(snakemake, log)``.
    """
    for var in THREAD_ENV_VARS:
        os.environ.setdefault(var, str(smk.threads))
    log = setup_logging(smk.log[0] if len(smk.log) else None)
    start = time.perf_counter()
    log.info("rule %s, wildcards %s, threads %s", smk.rule, dict(smk.wildcards), smk.threads)
    try:
        with threadpool_limits(limits=int(smk.threads)):
            main(smk, log)
    except InputError as err:
        log.error("%s", err)
        raise SystemExit(f"voxelyte: {err}") from None
    log.info("done in %.1f s", time.perf_counter() - start)


def stage_record(smk: Any, *, inputs, outputs, params) -> dict:
    """The provenance record of this job.

    :func:`provenance.make_record` with the job's rule, sample wildcard, sample-config hash and
    repository.

    Parameters
    ----------
    smk : object
        Snakemake's ``snakemake`` object (duck-typed).
    inputs : mapping or iterable
        Input names -> paths, or a list of paths (hashed).
    outputs : iterable
        Output paths.
    params : mapping
        The job's parameters.

    Returns
    -------
    dict
        The provenance record.
    """
    return provenance.make_record(
        rule=smk.rule, sample=smk.wildcards.sample, inputs=inputs, outputs=outputs,
        params=params, config_hash=smk.params.config_hash,
        repo_dir=Path(smk.scriptdir).parents[1])


def save_results(smk: Any, dataset, store, record: dict, summary: dict | None = None) -> None:
    """Write the stage's dataset, its summary and its provenance record atomically.

    The dataset, with the record in its attrs, goes to ``store``; then the summary
    (``smk.output.summary``) and the record (``smk.output.record``) as JSON.

    Parameters
    ----------
    smk : object
        Snakemake's ``snakemake`` object (duck-typed; ``threads`` limit the zarr writer).
    dataset : xarray.Dataset
        The stage's volume.
    store : str or Path
        The zarr store to write.
    record : dict
        The provenance record (:func:`stage_record`).
    summary : dict, optional
        The stage's summary (None: not written).
    """
    dataset.attrs["provenance"] = record
    contract.write_zarr_atomic(dataset, store, num_workers=smk.threads)
    if summary is not None:
        contract.write_json_atomic(summary, smk.output.summary)
    contract.write_json_atomic(record, smk.output.record)
