"""The models a run loads: ``lid.176.ftz`` (packaged here, travels with every job) and
``python -m pipeline.models stage``, which copies a preset's NLLB, COMET and LLM into the
user's storage (``stage.py``). Imports nothing heavy."""
