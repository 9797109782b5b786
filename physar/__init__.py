"""Phys-AR: physics-aware video generation over diffusion-timestep tokens."""

__version__ = "0.1.0"
