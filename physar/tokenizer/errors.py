"""The tokenizer's user-facing errors (kept free of torch so the command line starts fast)."""


class ConfigError(ValueError):
    """A configuration that cannot be used; the message is one line."""


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete, or does not match the model or the data."""


class TrainingError(RuntimeError):
    """The run folder cannot take this run (exists without --resume, other settings)."""


class FrameDataError(ValueError):
    """Dataset folders that cannot feed the tokenizer (wrong resolution, no clips)."""
