"""What every stage's settings dataclass shares: read from YAML (one-line errors for a missing file,
an unknown key or a bad value, naming the file), write as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import yaml

from physar.errors import ConfigError


class YamlConfig:
    """Mixin for a dataclass whose __post_init__ raises ConfigError for bad values."""

    @classmethod
    def from_dict(cls, data: dict, source: str = "config"):
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{source}: unknown key {', '.join(unknown)}")
        try:
            return cls(**data)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_yaml(cls, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))
