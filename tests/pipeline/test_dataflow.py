"""The job a Dataflow user submits, built offline (``--dry_run=True``: no credentials, no
network): GPU resource hints only on the model stages' environments, the custom container
everywhere, and a staged package that carries what workers read (prompts, presets, LID model)."""

import tarfile

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline import config as config_mod
from pipeline.methods import NATURAL

STAGES = NATURAL.names
from pipeline.methods import natural
from pipeline.ops import resume
from pipeline.options import SAMPLE_TEMPLATE
from tests.pipeline.test_chain import ROOT
from transforms import languages
from transforms.sources.cc100 import input_pattern

IMAGE = "us-docker.pkg.dev/example-project/images/natural-instruct:1"
MODEL_STAGES = {"Translate", "Generate", "Judge", "Backtranslate", "Qe"}
ACCELERATOR = "beam:resources:accelerator:v1"


@pytest.fixture(scope="module")
def paper_job():
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    config = config_mod.load("paper")
    tel = languages.get("tel")
    prints = resume.fingerprints(config, {"tel": input_pattern(SAMPLE_TEMPLATE, tel)}, "qe")
    options = PipelineOptions([
        "--project=example-project", "--region=us-central1", "--temp_location=gs://bucket/tmp",
        "--dry_run=True", f"--sdk_container_image={IMAGE}", "--experiments=use_runner_v2",
    ])
    runner = DataflowRunner()
    p = beam.Pipeline(runner=runner, options=options)
    natural.build(p, NATURAL, [tel], config, "gs://bucket/cc100/{cc100}.txt.xz", "gs://bucket/out", resume.Plan({}, STAGES), prints)
    p.run()
    return config, runner.proto_pipeline


def test_only_the_model_stages_ask_for_gpus(paper_job):
    config, proto = paper_job
    environments = proto.components.environments
    hints_of_stage: dict[str, set] = {}
    for transform in proto.components.transforms.values():
        if transform.environment_id:
            hint = environments[transform.environment_id].resource_hints.get(ACCELERATOR, b"").decode()
            hints_of_stage.setdefault(transform.unique_name.split("/")[0], set()).add(hint)
    assert MODEL_STAGES <= set(hints_of_stage)
    for stage, hints in hints_of_stage.items():
        if stage in MODEL_STAGES:
            section = config.llm if stage in ("Generate", "Judge") else config.qe if stage == "Qe" else config.translate
            assert hints == {section.accelerator}, stage
        else:
            assert hints == {""}, stage  # read, select, dedup, checkpoints, writes: CPU workers
    assert config.llm.accelerator.startswith("type:nvidia-tesla-a100;count:8")


def test_every_environment_runs_the_custom_container(paper_job):
    _, proto = paper_job
    for environment in proto.components.environments.values():
        assert beam_runner_api_pb2.DockerPayload.FromString(environment.payload).container_image == IMAGE


def test_the_staged_package_carries_prompts_presets_and_the_lid_model(tmp_path):
    from apache_beam.runners.portability.stager import Stager

    Stager.create_job_resources(PipelineOptions([f"--setup_file={ROOT / 'setup.py'}"]), str(tmp_path))
    (sdist,) = tmp_path.glob("*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {f"prompts/files/{p}.yaml" for p in ("open_ended@1", "mcq@1", "judge@1")} <= names
    assert {f"pipeline/presets/{p}.yaml" for p in ("base", *config_mod.PRESETS)} <= names
    assert {"pipeline/models/lid.176.ftz", "pipeline/models/__init__.py", "pipeline/models/stage.py"} <= names
