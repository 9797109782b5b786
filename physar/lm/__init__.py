"""The language model stages: the LM built from a config (or a local base model), SFT with trl,
and generation from conditioning frames to finished videos."""
