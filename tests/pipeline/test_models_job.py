"""The paper job for Dataflow, built offline (``--dry_run=True``) with its models staged in a
bucket: the workers' model stages carry the bucket paths, and neither the job nor its staged
package carries the Hugging Face token of the machine that built it."""

import base64
import bz2
import tarfile
import zlib

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2

from pipeline import config as config_mod
from pipeline.methods import NATURAL

STAGES = NATURAL.names
from pipeline.methods import natural
from pipeline.models.stage import models_yaml
from pipeline.ops import resume
from pipeline.options import SAMPLE_TEMPLATE
from tests.pipeline.test_chain import ROOT
from transforms import languages
from transforms.sources.cc100 import input_pattern

TOKEN = "hf_PlantedTokenNeverToBeWritten0123456789"
BUCKET = "gs://example-bucket/models"


def pickled_dofns(proto) -> list[bytes]:
    """Every ParDo's DoFn as the raw pickle workers unpickle (Beam stores it compressed, bz2 or
    zlib, then base64'd)."""
    out = []
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload
            packed = base64.b64decode(payload)
            out.append(bz2.decompress(packed) if packed.startswith(b"BZh") else zlib.decompress(packed))
    return out


@pytest.fixture(scope="module")
def staged_paper_job(tmp_path_factory):
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", TOKEN)
        path = tmp_path_factory.mktemp("bucket") / "models.yaml"
        path.write_text(models_yaml(config_mod.load("paper"), BUCKET))
        config = config_mod.load("paper", str(path))
        tel = languages.get("tel")
        prints = resume.fingerprints(config, {"tel": input_pattern(SAMPLE_TEMPLATE, tel)}, "qe")
        options = PipelineOptions(["--project=example-project", "--region=us-central1",
                                   "--temp_location=gs://bucket/tmp", "--dry_run=True",
                                   "--sdk_container_image=example/image:1", "--experiments=use_runner_v2"])
        runner = DataflowRunner()
        p = beam.Pipeline(runner=runner, options=options)
        natural.build(p, NATURAL, [tel], config, "gs://bucket/cc100/{cc100}.txt.xz", "gs://bucket/out", resume.Plan({}, STAGES), prints)
        p.run()
        return config, options, runner.proto_pipeline


def test_the_model_stages_name_the_staged_copies(staged_paper_job):
    config, _, proto = staged_paper_job
    assert config.llm.model == f"{BUCKET}/meta-llama--Meta-Llama-3-70B-Instruct"
    dofns = pickled_dofns(proto)
    for model in (config.translate.model, config.qe.model, config.llm.model):
        assert any(model.encode() in d for d in dofns), model
    assert not any(b"huggingface.co" in d for d in dofns)


def test_no_token_in_the_job_its_options_or_its_package(staged_paper_job, tmp_path, monkeypatch):
    from apache_beam.runners.portability.stager import Stager

    _, options, proto = staged_paper_job
    assert TOKEN.encode() not in proto.SerializeToString()
    assert not any(TOKEN.encode() in d for d in pickled_dofns(proto))
    assert TOKEN not in repr(options.get_all_options())
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    Stager.create_job_resources(PipelineOptions([f"--setup_file={ROOT / 'setup.py'}"]), str(tmp_path))
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.isfile():
                assert TOKEN.encode() not in tar.extractfile(member).read(), member.name
