"""Study / sample config validation: defaults filled, and one clear error per bad input."""
import copy
import inspect
from pathlib import Path

import pytest
import yaml

from voxelyte import config
from voxelyte.errors import InputError

PHASES = {
    "pore": {"label": 0},
    "CAM": {"label": 1, "density_g_cm3": 4.75, "sigma_electronic_S_cm": 0.1},
    "SE": {"label": 2, "density_g_cm3": 2.2, "sigma_ionic_S_cm": 2e-3},
}


@pytest.fixture
def stack_file(tmp_path) -> Path:
    path = tmp_path / "bse.tif"
    path.write_bytes(b"not read during validation")
    return path


def real_sample(stack_file: Path) -> dict:
    return {
        "inputs": [{"name": "BSE", "format": "tiff", "path": stack_file.name}],
        "voxel_size_um": {"z": 0.1, "y": 0.1, "x": 0.1},
        "phases": copy.deepcopy(PHASES),
    }


def write(tmp_path: Path, data: dict, name: str = "S1") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_good_sample_gets_defaults_and_resolved_paths(tmp_path, stack_file):
    sample = config.load_sample(write(tmp_path, real_sample(stack_file)))
    assert sample.name == "S1"
    assert sample.inputs[0]["path"] == stack_file.resolve()
    assert sample.inputs[0]["byte_order"] == "little"          # default filled
    assert sample.config["electrode_normal_axis"] == "z"       # default filled
    assert sample.stages["ingest"]["chunks_zyx"] == [16, 1024, 1024]
    assert sample.voxel_size_um == {"z": 0.1, "y": 0.1, "x": 0.1}
    assert len(sample.config_hash) == 64


def test_stage_parameters_merge_schema_study_sample(tmp_path, stack_file):
    data = real_sample(stack_file)
    data["stages"] = {"ingest": {"chunks_zyx": [4, 64, 64]}}
    sample = config.load_sample(write(tmp_path, data),
                                study_stages={"ingest": {"chunks_zyx": [8, 128, 128]}})
    assert sample.stages["ingest"]["chunks_zyx"] == [4, 64, 64]
    data.pop("stages")
    sample = config.load_sample(write(tmp_path, data),
                                study_stages={"ingest": {"chunks_zyx": [8, 128, 128]}})
    assert sample.stages["ingest"]["chunks_zyx"] == [8, 128, 128]


def test_config_hash_changes_with_content(tmp_path, stack_file):
    data = real_sample(stack_file)
    first = config.load_sample(write(tmp_path, data)).config_hash
    assert config.load_sample(write(tmp_path, data)).config_hash == first
    data["voxel_size_um"]["z"] = 0.05
    assert config.load_sample(write(tmp_path, data)).config_hash != first


def test_phantom_sample_derives_inputs_and_voxel_size(tmp_path):
    data = {"phantom": {"seed": 3, "shape_zyx": [32, 40, 48]}, "phases": copy.deepcopy(PHASES)}
    sample = config.load_sample(write(tmp_path, data), phantom_dir=tmp_path / "gen")
    assert [c["name"] for c in sample.inputs] == ["BSE", "SE"]
    assert sample.inputs[0]["path"] == tmp_path / "gen" / "BSE.tif"
    assert sample.voxel_size_um == {"z": 0.1, "y": 0.1, "x": 0.1}
    assert sample.phantom["render"]["drift_total_px"] == [4.0, -3.0]  # nested defaults


def mutate(path, value):
    """Return a function setting data[path...] = value (value None deletes the key)."""
    def apply(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        elif isinstance(target, list) and path[-1] == len(target):
            target.append(value)
        else:
            target[path[-1]] = value
        return data
    return apply


BAD_SAMPLES = [
    # (id, mutation, field named in the message, words expected in the message)
    ("unknown-key", mutate(["voxel_size"], 0.1), "voxel_size", "unknown key"),
    ("unknown-nested-key", mutate(["phases", "CAM", "colour"], "red"), "phases.CAM.colour",
     "unknown key"),
    ("negative-voxel-size", mutate(["voxel_size_um", "y"], -0.1), "voxel_size_um.y", "> 0"),
    ("zero-voxel-size", mutate(["voxel_size_um", "z"], 0), "voxel_size_um.z", "> 0"),
    ("wrong-type-voxel-size", mutate(["voxel_size_um", "x"], "0.1um"), "voxel_size_um.x",
     "type number"),
    ("missing-phases", mutate(["phases"], None), "phases", "required"),
    ("missing-label", mutate(["phases", "SE", "label"], None), "phases.SE.label", "required"),
    ("label-out-of-range", mutate(["phases", "SE", "label"], 300), "phases.SE.label", "<= 255"),
    ("duplicate-label", mutate(["phases", "SE", "label"], 1), "phases.SE.label", "share"),
    ("bad-format", mutate(["inputs", 0, "format"], "png"), "inputs[0].format", "'tiff'"),
    ("missing-file", mutate(["inputs", 0, "path"], "nowhere.tif"), "inputs[0].path",
     "not found"),
    ("hdf5-without-dataset", mutate(["inputs", 0, "format"], "hdf5"), "inputs[0].dataset",
     "dataset"),
    ("raw-without-shape", mutate(["inputs", 0], {"name": "BSE", "format": "raw",
                                                 "path": "bse.tif", "dtype": "uint16"}),
     "inputs[0].shape_zyx", "raw"),
    ("bad-normal-axis", mutate(["electrode_normal_axis"], "w"), "electrode_normal_axis", "'z'"),
    ("empty-crop", mutate(["crop"], {"z": [10, 5]}), "crop.z", "start < stop"),
    ("crop-wrong-length", mutate(["crop"], {"x": [1, 2, 3]}), "crop.x", "2 items"),
    ("no-inputs-no-phantom", mutate(["inputs"], None), "inputs", "phantom"),
    ("duplicate-channel", mutate(["inputs", 1], {"name": "BSE", "format": "tiff",
                                                 "path": "bse.tif"}), "inputs[1].name", "twice"),
    ("nominal-unknown-phase", mutate(["nominal_composition"], {"volume_fraction": {"CBD": 0.1}}),
     "nominal_composition.volume_fraction.CBD", "phase"),
    ("nominal-over-one", mutate(["nominal_composition"],
                                {"volume_fraction": {"CAM": 0.7, "SE": 0.6}}),
     "nominal_composition.volume_fraction", "more than 1"),
    ("bad-stage-param", mutate(["stages"], {"ingest": {"chunks_zyx": [0, 64, 64]}}),
     "stages.ingest.chunks_zyx[0]", ">= 1"),
    ("unknown-stage", mutate(["stages"], {"segmentation": {}}), "stages.segmentation",
     "unknown key"),
]


@pytest.mark.parametrize("case_id,apply,field,words", BAD_SAMPLES, ids=[c[0] for c in BAD_SAMPLES])
def test_bad_sample_gives_one_clear_error(tmp_path, stack_file, case_id, apply, field, words):
    data = apply(real_sample(stack_file))
    path = write(tmp_path, data, name="bad_sample")
    with pytest.raises(InputError) as info:
        config.load_sample(path)
    message = str(info.value)
    assert "sample 'bad_sample'" in message
    assert str(path) in message
    assert f"field '{field}'" in message
    assert words in message, message
    assert "\n" not in message


def test_bad_phantom_parameters(tmp_path):
    data = {"phantom": {"porosity": 0.9}, "phases": copy.deepcopy(PHASES)}
    with pytest.raises(InputError, match=r"field 'phantom.porosity'.*'auto' or a number in \[0, 0.5\]"):
        config.load_sample(write(tmp_path, data), phantom_dir=tmp_path)
    data = {"phantom": {}, "phases": {"pore": {"label": 0}, "CAM": {"label": 2}, "SE": {"label": 1}}}
    with pytest.raises(InputError, match="field 'phases'.*phantom label convention"):
        config.load_sample(write(tmp_path, data), phantom_dir=tmp_path)
    data = {"phantom": {"voxel_size_um": 0.1}, "voxel_size_um": {"z": 0.2},
            "phases": copy.deepcopy(PHASES)}
    with pytest.raises(InputError, match="field 'voxel_size_um.z'"):
        config.load_sample(write(tmp_path, data), phantom_dir=tmp_path)


def test_yaml_syntax_and_shape_errors(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("phases: {pore: [\n")
    with pytest.raises(InputError, match="broken.yaml.*not valid YAML"):
        config.load_sample(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="top level must be a mapping"):
        config.load_sample(path)


def test_study_config_good_and_bad(tmp_path, stack_file):
    sample_path = write(tmp_path, real_sample(stack_file))
    study = config.load_study({"study": "s", "samples": {"A": str(sample_path)}}, workdir=tmp_path)
    assert study.name == "s" and list(study.samples) == ["A"]
    assert study.results_dir == tmp_path / "results"          # default, relative to workdir
    assert study.samples["A"].name == "A"

    bad = [
        ({"samples": {}}, "samples", "at least 1"),
        ({"samples": {"A": str(sample_path)}, "sampels": {}}, "sampels", "unknown key"),
        ({"samples": {"A": str(tmp_path / "missing.yaml")}}, "samples.A", "not found"),
        ({"samples": {"bad name": str(sample_path)}}, "samples", "text matching"),
        ({"samples": {"A": str(sample_path)}, "stages": {"ingest": {"chunk": 1}}},
         "stages.ingest.chunk", "unknown key"),
        ({"study": 3, "samples": {"A": str(sample_path)}}, "study", "type string"),
    ]
    for cfg, field, words in bad:
        with pytest.raises(InputError) as info:
            config.load_study(cfg, workdir=tmp_path, source="study.yaml")
        message = str(info.value)
        assert f"field '{field}'" in message and words in message and "study.yaml" in message, message


def test_repository_demo_study_is_valid(repo_root):
    study = config.load_study(repo_root / "config" / "config.yaml", workdir=repo_root)
    assert set(study.samples) == {"BM10", "BM03", "BM01"}
    se_size = {name: s.phantom["se_d50_um"] for name, s in study.samples.items()}
    assert se_size["BM10"] > se_size["BM01"] > se_size["BM03"]     # Minnmann's d50 order
    for sample in study.samples.values():
        assert min(sample.phantom["shape_zyx"]) >= 160
        assert sample.phantom["voxel_size_um"] == pytest.approx(0.1)


def test_workflow_schemas_are_the_packaged_ones(repo_root):
    for name in config.SCHEMA_NAMES:
        linked = repo_root / "workflow" / "schemas" / f"{name}.schema.yaml"
        assert yaml.safe_load(linked.read_text()) == config.load_schema(name)


def test_stage_schema_defaults_match_library_defaults():
    from voxelyte import preprocess, register

    defaults = config.stage_defaults()
    # register / preprocess take every setting by name and without a default: the schema's
    # keys are exactly the stage function's keyword arguments, its defaults the only ones
    for stage, function in (("register", register.register),
                            ("preprocess", preprocess.preprocess)):
        runtime_only = {"num_workers"}  # set from the rule's threads, not from config
        keywords = {name: p for name, p in inspect.signature(function).parameters.items()
                    if p.kind is p.KEYWORD_ONLY and name not in runtime_only}
        assert set(defaults[stage]) == set(keywords), stage
        assert all(p.default is inspect.Parameter.empty for p in keywords.values()), stage
    from voxelyte import descriptors

    signature = inspect.signature(descriptors.compute_descriptors).parameters
    for key in defaults["descriptors"]:
        assert signature[key].default is inspect.Parameter.empty, key


def test_measured_values_come_from_a_literature_table(tmp_path, stack_file):
    table = tmp_path / "lit.yaml"
    table.write_text(yaml.safe_dump({"source": "Paper 2024", "entries": {
        "A": {"sigma_eff_electronic_S_cm": 0.015, "sigma_eff_ionic_S_cm": 5e-5}}}))
    data = real_sample(stack_file)
    data["measured"] = {"table": "lit.yaml", "entry": "A", "sigma_eff_ionic_S_cm": 1e-4}
    s = config.load_sample(write(tmp_path, data))
    assert s.config["measured"] == {"sigma_eff_electronic_S_cm": 0.015,
                                    "sigma_eff_ionic_S_cm": 1e-4, "reference": "Paper 2024"}
    data["measured"] = {"table": "lit.yaml", "entry": "B"}
    with pytest.raises(InputError, match="entry not in the literature table") as err:
        config.load_sample(write(tmp_path, data))
    assert "measured.entry" in str(err.value) and "'A'" in str(err.value)
    data["measured"] = {"table": "lit.yaml"}
    with pytest.raises(InputError, match="measured"):
        config.load_sample(write(tmp_path, data))


def test_demo_samples_read_the_shipped_literature_table():
    study = config.load_study("config/config.yaml", check_files=False)
    measured = {n: s.config["measured"] for n, s in study.samples.items()}
    # Minnmann et al. 2024 (Fig. 2c/d): no ionic value for BM01
    assert measured["BM10"]["sigma_eff_ionic_S_cm"] == 0.05e-3
    assert "sigma_eff_ionic_S_cm" not in measured["BM01"]


def label_sample(path_name: str = "labels.tif") -> dict:
    return {"labels": {"format": "tiff", "path": path_name,
                       "values": {0: "pore", 85: "CAM", 170: "SE"}},
            "voxel_size_um": {"z": 0.1, "y": 0.1, "x": 0.1}, "phases": copy.deepcopy(PHASES)}


def test_label_volume_sample_resolves_its_file_and_value_map(tmp_path):
    (tmp_path / "labels.tif").write_bytes(b"not read during validation")
    s = config.load_sample(write(tmp_path, label_sample()))
    assert s.labels["path"] == (tmp_path / "labels.tif").resolve()
    assert s.labels["values"] == {0: "pore", 85: "CAM", 170: "SE"} and s.inputs == []


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d["labels"]["values"].update({255: "CBD"}), "labels.values.255", "unknown phase"),
    (lambda d: d["labels"]["values"].update({"x1": "SE"}), "labels.values.x1",
     "non-negative integers"),
    (lambda d: d.update(inputs=[{"name": "BSE", "format": "tiff", "path": "labels.tif"}]),
     "labels", "exactly one of"),
    (lambda d: d["labels"].update(path="missing.tif"), "labels.path", "not found"),
])
def test_label_volume_sample_errors_name_the_field(tmp_path, change, field, message):
    (tmp_path / "labels.tif").write_bytes(b"x")
    data = label_sample()
    change(data)
    with pytest.raises(InputError, match=message) as err:
        config.load_sample(write(tmp_path, data))
    assert f"field '{field}'" in str(err.value) and "S1" in str(err.value)
