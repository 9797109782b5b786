"""DDT: the diffusion-timestep tokenizer (encoder, FSQ, token-conditioned diffusion decoder,
one-step renderer), its training loop and its use on datasets.

    from physar.tokenizer.model import DDTTokenizer
    from physar.tokenizer.codec import load_tokenizer, encode_clip, decode_clip
"""
