"""Provenance records: hashes, versions, git state, gathering with benchmark figures."""
import hashlib
import json

from voxelyte import __version__, contract, provenance


def test_sha256_of_file_is_the_standard_digest(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"voxel" * 1000)
    assert provenance.sha256_path(path) == hashlib.sha256(b"voxel" * 1000).hexdigest()


def test_sha256_of_folder_depends_on_content_and_names_only(tmp_path):
    for root in ("one", "two"):
        (tmp_path / root / "c").mkdir(parents=True)
        (tmp_path / root / "c" / "0").write_bytes(b"chunk")
        (tmp_path / root / "zarr.json").write_text("{}")
    one, two = provenance.sha256_path(tmp_path / "one"), provenance.sha256_path(tmp_path / "two")
    assert one == two
    (tmp_path / "two" / "c" / "0").write_bytes(b"chunK")
    assert provenance.sha256_path(tmp_path / "two") != one
    (tmp_path / "two" / "c" / "0").write_bytes(b"chunk")
    (tmp_path / "two" / "c" / "0").rename(tmp_path / "two" / "c" / "1")
    assert provenance.sha256_path(tmp_path / "two") != one


def test_record_has_every_required_field(tmp_path, repo_root):
    data = tmp_path / "in.tif"
    data.write_bytes(b"123")
    record = provenance.make_record(rule="ingest", sample="S", inputs={"BSE": data},
                                    outputs=[tmp_path / "raw.zarr"], params={"chunks": (1, 2)},
                                    config_hash="ab" * 32, repo_dir=repo_root)
    assert record["inputs"] == [{"name": "BSE", "path": str(data),
                                 "sha256": hashlib.sha256(b"123").hexdigest()}]
    assert record["params"] == {"chunks": [1, 2]}
    assert record["voxelyte_version"] == __version__
    assert record["sample_config_sha256"] == "ab" * 32
    assert {"numpy", "zarr", "snakemake", "python"} <= set(record["packages"])
    assert record["packages"]["numpy"] != "not installed"
    assert len(record["git"]["commit"] or "") in (0, 40)
    assert record["created_utc"].endswith("+00:00")
    json.dumps(record)  # serialisable as is


def test_git_state_outside_a_repository(tmp_path):
    assert provenance.git_state(tmp_path) == {"commit": None, "dirty": None}


def test_gather_joins_records_and_benchmarks(tmp_path):
    records = []
    for rule in ("phantom", "ingest"):
        rec = provenance.make_record(rule=rule, sample="S", inputs=[], outputs=[], params={})
        records.append(contract.write_json_atomic(rec, tmp_path / f"{rule}.json"))
    bench = tmp_path / "ingest.tsv"
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t345.6\t900.1\n")
    doc = provenance.gather(records, {"ingest/S": bench, "phantom/S": tmp_path / "absent.tsv"},
                            study="demo", out_path=tmp_path / "provenance.json")
    on_disk = json.loads((tmp_path / "provenance.json").read_text())
    assert on_disk["study"] == "demo" and len(on_disk["runs"]) == 2
    by_rule = {run["rule"]: run for run in doc["runs"]}
    assert by_rule["ingest"]["benchmark"]["s"] == 12.5
    assert by_rule["ingest"]["benchmark"]["max_rss"] == 345.6
    assert by_rule["phantom"]["benchmark"] is None
    assert not list(tmp_path.glob(".*tmp*"))
