"""User-facing errors of the model stages (kept free of torch so the command line starts fast).
Each message is one line; the command line prints it and exits with status 2."""


class ConfigError(ValueError):
    """A configuration that cannot be used."""


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete, or does not match the model or the data."""


class TrainingError(RuntimeError):
    """The run folder cannot take this run (exists without --resume, other settings)."""


class FrameDataError(ValueError):
    """Dataset folders that cannot feed a model (wrong resolution, no clips, no tokens)."""
