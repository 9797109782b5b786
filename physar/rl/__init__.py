"""Stage 2: reinforcement learning with physics-consistency rewards."""
