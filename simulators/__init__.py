"""Pymunk scenes and the renderer: pure Python, numpy, pymunk; no torch."""

from .render import render, render_frames
from .scenes import SCENES, PlacementError, Scene, get_scene
from .trajectory import Ball, Trajectory
from .world import CONDITIONING_FRAMES, FRAME_DT, NUM_FRAMES, WORLD_SIZE, pixel_to_world, world_to_pixel

__all__ = [
    "Ball", "Trajectory", "Scene", "SCENES", "PlacementError", "get_scene", "render", "render_frames",
    "world_to_pixel", "pixel_to_world", "WORLD_SIZE", "FRAME_DT", "NUM_FRAMES", "CONDITIONING_FRAMES",
]
