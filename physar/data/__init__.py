"""Simulated datasets: recipes, generation to disk, previews, a PyTorch dataset."""
