"""DDT: the diffusion-timestep tokenizer (encoder, FSQ, token-conditioned diffusion decoder,
one-step renderer), its training loop and its use on datasets."""

from physar.tokenizer.config import TokenizerConfig
from physar.tokenizer.model import DDTTokenizer

__all__ = ["TokenizerConfig", "DDTTokenizer"]
