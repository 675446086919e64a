"""Tiny, randomly initialised stand-ins for the real models, built locally (no hub access):
the demo preset and the tests run every model stage's real code path on them.

Each builder writes a directory the real loading code reads like a downloaded model, and
returns its path; ``ensure`` builds once and caches under ``NATURAL_INSTRUCT_CACHE`` (default
``~/.cache/natural-instruct/tiny``). Output made with them proves plumbing, not quality.
"""

from __future__ import annotations

import fcntl
import lzma
import os
from collections.abc import Callable
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "pipeline" / "sample"
# Text for the tokenizers: the bundled sample in four scripts plus English. Other scripts
# encode as <unk> with these tokenizers: fine for stand-ins, whose output is random anyway.
_ENGLISH = (
    "Everyone has the right to life, liberty and security of person. "
    "Write a short question that this text answers. What is the main idea of the passage? "
    "Summarise the following text in two sentences. Which of the options A, B, C or D is right? "
    "Solve the problem step by step and give the final answer. Rate the response from 1 to 5."
)


def cache_dir() -> Path:
    return Path(os.environ.get("NATURAL_INSTRUCT_CACHE", Path.home() / ".cache" / "natural-instruct" / "tiny"))


def resolve(name: str) -> str:
    """A model name from config as a path or hub id: ``tiny:NAME`` is a stand-in built here."""
    return ensure(name.removeprefix("tiny:")) if name.startswith("tiny:") else name


def ensure(name: str) -> str:
    """Path of tiny model ``name`` (``nllb``), built on first use; safe across processes."""
    builder = BUILDERS[name]
    target = cache_dir() / name
    if (target / "READY").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "READY").exists():
            builder(target)
            (target / "READY").write_text("built by transforms/models/tiny_models.py\n")
    return str(target)


def training_text() -> list[str]:
    lines = [_ENGLISH] * 20
    for path in sorted(SAMPLE.glob("*.txt.xz")):
        text = lzma.open(path).read().decode("utf-8", errors="ignore")
        lines += [line for line in text.splitlines() if line.strip()]
    return lines


def _train_sentencepiece(prefix: Path, vocab_size: int, **extra) -> Path:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        **extra,
    )
    return Path(f"{prefix}.model")


def build_nllb(target: Path) -> None:
    """An NLLB-layout tokenizer (sentencepiece, the 202 language codes after the vocabulary,
    ``<mask>`` last) and a 2+2-layer M2M100 with d_model 32."""
    import torch
    from transformers import (
        M2M100Config,
        M2M100ForConditionalGeneration,
        NllbTokenizerFast,
    )

    target.mkdir(parents=True, exist_ok=True)
    # ids 0/1/2 = unk/<s>/</s> and no pad: the layout NllbConverter expects
    spm_model = _train_sentencepiece(
        target / "spm", 1200, unk_id=0, bos_id=1, eos_id=2, pad_id=-1
    )
    tokenizer = NllbTokenizerFast(vocab_file=str(spm_model))
    torch.manual_seed(0)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        tokenizer_class="NllbTokenizer",
    )
    model = M2M100ForConditionalGeneration(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    spm_model.unlink()
    Path(f"{target / 'spm'}.vocab").unlink()


def build_comet(target: Path) -> None:
    """A CometKiwi-shaped ``UnifiedMetric`` (reference-free: inputs mt and src) on a 2-layer
    XLM-R encoder with hidden size 32, saved the way COMET checkpoints are:
    ``checkpoints/model.ckpt`` plus ``hparams.yaml`` one level up."""
    import pytorch_lightning
    import torch
    import yaml
    from comet.models import UnifiedMetric
    from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

    encoder = target / "encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    spm_model = _train_sentencepiece(encoder / "spm", 1000, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    tokenizer = XLMRobertaTokenizerFast(vocab_file=str(spm_model))
    tokenizer.save_pretrained(encoder)
    XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,
    ).save_pretrained(encoder)
    for suffix in (".model", ".vocab"):
        Path(f"{encoder / 'spm'}{suffix}").unlink()
    hparams = {
        "activations": "Tanh",
        "batch_size": 16,
        "class_identifier": "unified_metric",
        "dropout": 0.1,
        "encoder_learning_rate": 1.0e-06,
        "encoder_model": "XLM-RoBERTa",
        "final_activation": None,
        "hidden_sizes": [64],
        "input_segments": ["mt", "src"],
        "keep_embeddings_frozen": True,
        "layer": "mix",
        "layer_norm": False,
        "layer_transformation": "sparsemax",
        "layerwise_decay": 0.95,
        "learning_rate": 1.5e-05,
        "loss": "mse",
        "nr_frozen_epochs": 0.3,
        "optimizer": "AdamW",
        "pretrained_model": str(encoder),
        "sent_layer": "mix",
        "warmup_steps": 0,
        "word_layer": 2,
        "word_level_training": False,
    }
    torch.manual_seed(0)
    init = {k: v for k, v in hparams.items() if k not in ("class_identifier", "layer")}
    model = UnifiedMetric(**init, load_pretrained_weights=False)
    (target / "checkpoints").mkdir(exist_ok=True)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": init,
            "pytorch-lightning_version": pytorch_lightning.__version__,
        },
        target / "checkpoints" / "model.ckpt",
    )
    (target / "hparams.yaml").write_text(yaml.safe_dump(hparams))


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_llama(target: Path) -> None:
    """A byte-level BPE tokenizer (vocabulary 2048, with a chat template) and a 2-layer Llama
    (hidden 128, 2 heads, 1 KV head, head_dim 64: a shape vLLM's CPU kernels support)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    target.mkdir(parents=True, exist_ok=True)
    specials = ["<|end|>", "<|pad|>", "<|begin|>", "<|system|>", "<|user|>", "<|assistant|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        training_text(),
        trainers.BpeTrainer(
            vocab_size=2048,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin|>",
        eos_token="<|end|>",
        pad_token="<|pad|>",
        model_input_names=["input_ids", "attention_mask"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(target)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(target)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "nllb": build_nllb,
    "comet": build_comet,
    "llama": build_llama,
}
