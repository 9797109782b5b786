"""One pymunk world for every scene: balls, optional gravity, optional walls.

Chipmunk (pymunk) and Box2D, which PhyWorld used, both integrate with semi-implicit Euler, so
free flight and free fall match PhyWorld's step for step. Materials follow PhyWorld: density 1
(mass = pi r^2), restitution 1 on every shape (Chipmunk multiplies the two elasticities of a
pair), no friction, no damping, and a small collision slop so balls barely overlap.
"""

from __future__ import annotations

import math

import numpy as np
import pymunk

from .trajectory import Ball, Trajectory
from .world import NUM_FRAMES, PHYSICS_DT, STEPS_PER_FRAME, WORLD_SIZE

COLLISION_SLOP = 0.001  # world units; Chipmunk's default 0.1 would show as a visible overlap
SOLVER_ITERATIONS = 20
# Chipmunk has no continuous collision detection: a wall contact is found only after a step has
# moved a ball into the wall, by up to |v| * dt. With walls (the box scene) each physics step is
# split in WALL_SUBSTEPS, so a recorded frame shows at most |v| * 0.001 of penetration (0.006 at
# speed 6) instead of 0.06. Free flight and free fall are exact either way.
WALL_SUBSTEPS = 10
_WALL = -1


def simulate(
    scene: str,
    params: dict,
    balls: list[Ball],
    gravity: float = 0.0,
    walls: bool = False,
    num_frames: int = NUM_FRAMES,
) -> Trajectory:
    """Step the balls for `num_frames` frames and record their state at every frame.

    Frame 0 is the initial state; between frames the world takes STEPS_PER_FRAME steps of
    PHYSICS_DT (each split in WALL_SUBSTEPS when there are walls). With `walls`, four static
    segments bound the 10 x 10 view.
    """
    space = pymunk.Space()
    space.gravity = (0.0, gravity)
    space.iterations = SOLVER_ITERATIONS
    space.collision_slop = COLLISION_SLOP

    bodies = []
    for i, ball in enumerate(balls):
        mass = math.pi * ball.r**2
        body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0.0, ball.r))
        body.position = (ball.x, ball.y)
        body.velocity = (ball.vx, ball.vy)
        shape = pymunk.Circle(body, ball.r)
        shape.elasticity, shape.friction = 1.0, 0.0
        shape.collision_type = i + 1
        space.add(body, shape)
        bodies.append(body)
    if walls:
        corners = [(0, 0), (WORLD_SIZE, 0), (WORLD_SIZE, WORLD_SIZE), (0, WORLD_SIZE)]
        for a, b in zip(corners, corners[1:] + corners[:1]):
            wall = pymunk.Segment(space.static_body, a, b, 0.0)
            wall.elasticity, wall.friction = 1.0, 0.0
            space.add(wall)

    collisions: list[tuple[int, int, int]] = []
    frame = [0]

    def on_begin(arbiter, space, data):
        a, b = (s.collision_type - 1 if s.collision_type else _WALL for s in arbiter.shapes)
        a, b = (a, b) if b == _WALL or (a != _WALL and a < b) else (b, a)  # ball first, lower index first
        collisions.append((frame[0], a, b))

    if len(balls) > 1 or walls:
        space.on_collision(begin=on_begin)

    substeps = WALL_SUBSTEPS if walls else 1
    n = len(balls)
    positions = np.empty((num_frames, n, 2))
    velocities = np.empty((num_frames, n, 2))
    for k in range(num_frames):
        if k > 0:
            frame[0] = k
            for _ in range(STEPS_PER_FRAME * substeps):
                space.step(PHYSICS_DT / substeps)
        for i, body in enumerate(bodies):
            positions[k, i] = body.position
            velocities[k, i] = body.velocity

    return Trajectory(
        scene=scene,
        params=params,
        positions=positions,
        velocities=velocities,
        radii=np.array([b.r for b in balls], dtype=float),
        masses=np.array([math.pi * b.r**2 for b in balls]),
        colors=np.array([b.color for b in balls], dtype=np.uint8).reshape(n, 3),
        collisions=collisions,
    )
