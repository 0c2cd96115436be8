"""The workflow scripts' glue (voxelyte.scripting), driven by a stand-in for Snakemake's object."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from voxelyte import contract, scripting
from voxelyte.errors import InputError


class _Wildcards(dict):
    """Snakemake's wildcards: a mapping with attribute access."""
    __getattr__ = dict.__getitem__


def _job(tmp_path, **output):
    repo = tmp_path / "repo"
    (repo / "workflow" / "scripts").mkdir(parents=True)
    return SimpleNamespace(
        rule="demo_rule", wildcards=_Wildcards(sample="S1"), threads=1,
        params=SimpleNamespace(config_hash="abc123"), log=[str(tmp_path / "job.log")],
        scriptdir=str(repo / "workflow" / "scripts"),
        output=SimpleNamespace(record=str(tmp_path / "record.json"), **output))


def test_save_results_writes_store_summary_and_record(tmp_path):
    smk = _job(tmp_path, summary=str(tmp_path / "summary.json"))
    inp = tmp_path / "input.txt"
    inp.write_text("x")
    record = scripting.stage_record(smk, inputs={"input": inp}, outputs=[tmp_path / "out.zarr"],
                                    params={"k": 1})
    assert (record["rule"], record["sample"], record["sample_config_sha256"]) == (
        "demo_rule", "S1", "abc123")
    ds = xr.Dataset({"v": (("z", "y", "x"), np.arange(24, dtype=np.uint8).reshape(2, 3, 4))})
    scripting.save_results(smk, ds, tmp_path / "out.zarr", record, {"n": 24})
    back = contract.open_volume(tmp_path / "out.zarr")
    np.testing.assert_array_equal(back["v"].values, ds["v"].values)
    assert back.attrs["provenance"]["inputs"][0]["name"] == "input"
    assert json.loads((tmp_path / "summary.json").read_text()) == {"n": 24}
    assert json.loads((tmp_path / "record.json").read_text())["params"] == {"k": 1}


def test_run_turns_bad_input_into_one_message(tmp_path, monkeypatch):
    smk = _job(tmp_path)
    for var in scripting.THREAD_ENV_VARS:    # run() sets them for its job: restore them after
        monkeypatch.setenv(var, "1")

    def main(smk, log):
        raise InputError("labels missing", sample="S1", field="labels", expected="a store",
                         found="nothing")

    with pytest.raises(SystemExit) as exc:
        scripting.run(smk, main)
    assert "S1" in str(exc.value) and "labels missing" in str(exc.value)
    assert "labels missing" in (tmp_path / "job.log").read_text()
