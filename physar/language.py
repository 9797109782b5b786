"""The physics language: one token sequence per clip, for the LM stages.

    prompt      <clip> <scene>, then per conditioning frame <frame> and its K visual tokens
    completion  <state> <obj> <red> <r> 1.05 <x> 2.31 <y> 6.40 <vx> 3.20 <vy> 0.00 ... </state>
                (numbers shown in decimal here; written as below)
                then per later frame: <frame> <p> x y (per object) and its K visual tokens
                (the tokenizer's <eos> closes it); with frame_velocity, <p> x y vx vy;
                with frame_displacement, <p> dx dy x y; with frame_acceleration, <p> ax ay x y

Numbers are written digit by digit, so an unseen value is made of seen tokens. By default they
are little-endian fixed point: an optional <->, then exactly `decimals` + 2 digits, least
significant first, with no point ("3.84" -> <4> <8> <3> <0>, "-0.53" -> <-> <3> <5> <0> <0>).
Each frame's position is the previous one plus a small step, and in this order the LM writes each
digit after the digits its carry depends on: small transformers learn addition far more easily so
(Lee et al. 2023, "Teaching arithmetic to small transformers"); written most significant first, the
first shipped LM got the fractions and the carries of its positions wrong. `little_endian=False` is
the first checkpoints' order: <-> <0> <.> <5> <3>.
Visual tokens <v0> ... are DDT token ids, written coarse first (the reverse of the tokenizer's
index order, as Selftok recommends). `symbolic=False` is the visual-only ablation: no <state>
block and no per-frame positions. `keypoint_tokens=True` writes a frame's `fine_tokens` finest tokens
(a keypoint tokenizer's keypoint and radius tokens, the last of a frame in LM order) as <k0> ...:
the same ids, tokens of their own, so that an id's embedding means one thing (a keypoint's
coordinates, not also a coarse code's levels).

`frame_velocity=True` writes each ball's velocity beside its position in every frame, so each
frame holds the whole state (position and velocity: what the next frame follows from). Without
it the model must find the velocity in the <state> block, scale it by the frame time and add it
to the last position; measured on `sft_cpu_v2`, it does not: given the simulator's own <state>
block its uniform-motion velocity error barely falls (0.76 -> 0.65 units/s,
benchmarks/lm_given_state.py), its steps wander from frame to frame. With the velocity in the
frame before, the next velocity is a copy (uniform), a fixed decrement (gravity) or a collision,
and the next position a local addition. It makes frames about 10 tokens longer per ball.

`frame_displacement=True` is that arithmetic made exact. frame_velocity writes velocities in
units/s at `decimals` places while a frame is 0.1 s: the next x is x + vx / 10, one digit place
off, and its last digit depends on the digit that rounding dropped, so no rule the LM could learn
gives it (measured: the hundredths digit of x cost 2.26 nats, chance 2.30). Here every frame
writes each ball's step since the last frame, in world units, then its position, both on the same
grid of `decimals` places (3 recommended: a step of 0.327 a frame): positions are rounded, and a
step is the difference of two rounded positions, so x = last x + dx holds to the last digit, a
digit-by-digit addition with its carry, least significant first. In uniform motion the step is a
copy of the last one (its last digit may move by one), under gravity the last one less g dt^2;
the first step follows from the <state> block's position (written on the same grid) and velocity.
The parser gives the steps as velocities in units/s (dx / FRAME_DT).

The position is then no longer free: the grammar holds it to the last position plus the step (its
digits are the only ones allowed, so constrained decoding writes them, and the parser rejects any
other), clipped to the largest number the language writes. The LM predicts the physics (each step)
and draws the frame from the position; it is not trusted with the addition, which a 4.5 M model
had not learned after 1200 steps (the 0.001 digit of x at 2.10 nats, chance 2.30: the loss
breakdown). `derived_positions=False` lets the model write the positions itself (a diagnostic: at
600 steps, uniform ID symbolic velocity error 3.46 free against 0.83 derived, 12 clips).

Nor had it learned to turn the <state> block's velocity (units/s) into the first step (one digit
place over). `state_steps=True` (with frame_displacement) writes the block's velocities as steps
per frame on the same grid (v * FRAME_DT, "3.27 units/s" as 0.327), so the first step is a copy of
it in uniform motion; the parser gives them back in units/s.

`frame_acceleration=True` (with both) goes one order further: every frame writes each ball's
change of step `<p> ax ay x y` (acceleration x dt^2 on the same grid), and the grammar sums both the
steps (from the <state> block's, now the step into the last conditioning frame) and the positions.
Each step is the true one rounded (not a difference of rounded positions, whose last digit
jitters), so the LM writes exactly what changes the motion: 0 in uniform motion, -0.025 a frame
under gravity, a jump at a collision; the summed positions drift from the truth by at most half a
grid unit a frame. Carrying the block's state forward is then the default rather than something
to learn, so a good reading (`--state-from frames`) reaches the roll-out; the LM still reads, and
decides when and how hard the balls collide.

Two more options go with frame_acceleration, for collisions. `contact_gap=True` begins every
frame of a clip with two or more balls with `<gap> g`: the smallest distance between two balls'
edges if every ball moved one more frame at its last step (negative: they would overlap). The
grammar writes it from the LM's own positions and steps, as it writes the positions: a distance
sensor, not a physics rule; the LM still decides whether the balls collide and how hard (the
measured failure before it: `sft_cpu_v3` wrote a collision's jump in 2 of 62 clips, the balls
passed through). `whole_jumps=True` (training data) writes a collision's change of step whole in
the first frame whose gap is negative, instead of split over the two frames the contact falls
between in a proportion the LM would have to compute. `signed_changes=True` writes every change of
step that is not zero with its sign first, <+> or <->: least significant digit first, a positive
jump otherwise begins with a digit spread over ten values, and greedy decoding takes the <0> of
"no change" (measured: with contact_gap the red ball, whose jump is negative, turned in 12 of 20
clips on time, the blue one, whose jump is positive, in none); now the first token is the decision.
The grammar holds it too: a change that begins with a digit is zero, every digit <0> (before
2026-11-30 it accepted an unsigned +0.2, and `sft_v5_jumps` slipped such y changes past the sign:
7 of 29 ID collisions flew apart before the balls met).

`relative_steps=True` (with contact_gap) gives the LM the collision's frame of reference. In a
frame whose gap is negative, after it, the grammar writes `<rel>` and each ball's step relative to
the closest pair's centre of mass (masses r^2, as PhyWorld's), along the line of their centres,
as x and y (zero for a ball outside the pair). An elastic collision reverses exactly that: each
ball's change of step is -2 times what `<rel>` says. With it the LM has to learn that a collision
reverses the relative motion, and doubles a number it can see; without it (`sft_cpu_v4`), it
had to compute 2 m2 (v2 - v1) / (m1 + m2) from the <state> block's digits, and wrote jumps of the
wrong size (last-frame velocity error 4.6 units/s). Given by the grammar: the centre of mass and
the projection (kinematics, a change of frame); learned: that the balls collide, when, and what
a collision does.

`relative_jumps=True` (with relative_steps) takes the arithmetic out of that too. In a frame with
`<rel>`, each ball's `<p>` writes, instead of its change of step, its new step relative to the
centre of mass along the line of centres (the grammar adds back what it took away: new step = last
step - rel + written). An elastic collision writes -rel (the relative motion reversed: its digits
copied, its sign turned), a miss writes rel itself, an inelastic one something shorter. Measured
before it (`benchmarks/jump_probe.py`): after 600 steps with relative_steps and 600 more with jump
lessons, the LM wrote the doubled number's signs right in 38 of 38 held-out collisions and all its
digits for 4 of 76 balls; with it (`sft_cpu_v6`, 900 more steps) for 24 of 38 red balls and 6 of 38
blue ones, whose numbers come second in the <rel> block. Given by the grammar: the centre of mass (masses r^2), the line of
centres, the change of frame; learned: that the balls collide when their gap closes, and that a
collision reverses each ball's relative motion in full (restitution 1); momentum is conserved only
if it reverses both.

`relative_per_ball=True` (with relative_steps) moves each ball's relative step from the block after
`<rel>` into the ball's own `<p>`, just before its numbers: `<gap> g <rel> <p> rel_x rel_y ax ay x y
<p> rel_x rel_y ax ay x y`. Same tokens, other places: with relative_jumps an elastic collision
copies the two numbers just before it, at the same distance for every ball. In the block, the
blue ball's numbers sat two numbers further back than the red ball's, and behind the red ball's
<p>: `sft_cpu_v6` copied the red ball's digits right in 63% of held-out collisions, the blue
ball's in 16%. Measured after 400 steps from v6 with it (`configs/lm/cpu_v7_rel_per_ball.yaml`):
0% and 8%; moving the numbers undid the copy v6 had learned, and the generated collisions were
v6's within the noise.

`restitution_jumps=True` (with relative_steps, instead of relative_jumps) takes the copy out as
well. With relative_jumps an elastic collision copies the digits of <rel> with the sign turned, and
`sft_cpu_v6` did that for the red ball in 37 of 62 evaluation collisions and for the blue one in 1:
the blue ball copied the red ball's digits (the first number after <rel>), and the red ball's misses
began the copy one digit late (0.275 written 0.027; `docs/results_v10.md`). With restitution_jumps,
each component of a ball's `<p>` whose relative step is not zero writes the factor that multiplies
it: -1 for an elastic collision (its relative motion reversed), +1 for a miss, 0 for balls that
stick together (the grammar: new step = last step + (factor - 1) rel). A component whose relative
step is zero (a ball outside the pair, y in a head-on collision) writes its change as without it.
The writer takes the factor from the simulator's velocities around the collision (they give -1 to
float precision; the grid's rounded steps would give -1 +- 0.02 and noise in the digits), and the
frame after carries the rounding's correction. Given by the grammar: the centre of mass, the line of
centres, the change of frame, the multiplication; learned: that the balls collide when their gap
closes, and that a collision reverses their relative motion in full, the same number every time.
`sft_cpu_v8` (500 steps from v6 with it): every digit right for both balls under teacher forcing;
generating freely, both balls elastic in 38 of 62 evaluation collisions (v6: 9 for the blue ball).
In 23 of the other 24 the parser's reading tilts the line of centres by a fraction of a percent,
<rel> carries y components no (head-on) training collision has, and the LM writes about -0.1.
`normal_rel=True` (with restitution_jumps) writes the relative steps along the line of centres:
<rel> holds one signed number a ball (its x and y are that times the line's unit vector, the
grammar's), and each ball writes one factor for the whole of its relative step, then y's change of
step beyond it (none in a collision). Head-on, the same trajectory with the block's y zeros left
out; a line tilted by a reading's rounding moves a number by at most a unit and writes no y
components, which no training collision has.

`contact_timing=True` (with restitution_jumps) places the balls right in the frame of a
collision. whole_jumps writes the new step whole in that frame, so after every collision the
written positions were off the simulator's by the part of the frame before the contact times the
change of step: 0.05-0.75 units (up to 5 px), a constant offset the velocity of the states does
not see but a video does, where a ball leaves the frame early or late. With it, the grammar moves
each ball of the frame at its old step up to the contact and at its new one after: the contact
time from the gap now and the free-flight gap (the edge distance closes linearly head-on), taken
to the end of the simulator's physics step in which the balls first overlap (`contact_fraction`).
The tokens are the same; only the positions written after the collision change. Given by the
grammar: when within the frame the balls touch (kinematics); learned as before: that they do.

`state_big_endian=True` (with little_endian) writes the <state> block's numbers most significant
digit first, at the same fixed width ("3.84" -> <0> <3> <8> <4> <0>); the frames' numbers stay
least significant first, for their additions. The block is a reading, not a sum: written least
significant first, its first digits are the thousandths of a value the LM reads to a few tenths
at best, and the digits that carry the reading come last, after noise. Measured on sft_cpu_v11
(`benchmarks/lm_probe.py`, 201 collision clips): a linear probe on the hidden state at the <x> tag
reads ball 2's x to correlation 0.81, the greedy digits written after it 0.07. After the same 1000
steps of reading lessons on collision, the block big-endian writes ball 1's x at +0.75 against +0.58
(`configs/lm/cpu_v14_reading_big_endian.yaml` against `cpu_v13_reading_more.yaml`), and no velocity
either way: one is not in the features to write (docs/results_v19.md).

The scene token (<uniform>, <collision>, <parabola>, <box>) says which physics the clip obeys:
three conditioning frames cannot tell uniform motion from a horizontal throw (gravity moves the
ball 0.3 px in them), and PhyWorld trains one model per scene. Checkpoints from before it have
`scene_token=False`.

`SequenceParser` reads a sequence one token at a time, says which tokens may come next (the
basis of constrained decoding) and names the first token that breaks the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.world import FRAME_DT, PALETTE, STEPS_PER_FRAME

COLOR_NAMES = ("red", "blue", "green", "yellow", "magenta", "cyan", "black")  # PALETTE's order
SPECIAL = ("<pad>", "<bos>", "<eos>", "<unk>")
STRUCTURE = ("<clip>", "<frame>", "<state>", "</state>", "<obj>", "<p>")
FIELDS = ("<r>", "<x>", "<y>", "<vx>", "<vy>")
DIGITS = tuple(f"<{d}>" for d in range(10))
SIGN, POINT, PLUS = "<->", "<.>", "<+>"
MAX_INT_DIGITS = 2  # |value| < 100
SCENE_NAMES = ("uniform", "collision", "parabola", "box")
GAP = "<gap>"
REL = "<rel>"
# PhysicsLanguage's settings beyond the codebook: the LM config's keys of the same names, and what a
# checkpoint's physar.json records under "language"
OPTIONS = ("decimals", "symbolic", "scene_token", "little_endian", "frame_velocity", "frame_displacement",
           "state_steps", "frame_acceleration", "contact_gap", "whole_jumps", "signed_changes",
           "relative_steps", "relative_jumps", "relative_per_ball", "restitution_jumps", "normal_rel",
           "contact_timing", "state_big_endian", "keypoint_tokens")


def free_flight_gap(positions, steps, radii, decimals: int) -> float:
    """The smallest distance between two balls' edges if each moved one more frame at its step
    (negative: they would overlap), rounded to `decimals` places. The inputs are rounded to the
    same places first, so the writer and the grammar, holding the same written numbers as
    slightly different floats, get the same digits."""
    p = np.round(np.asarray(positions, dtype=float), decimals) + np.round(np.asarray(steps, dtype=float), decimals)
    r = np.round(np.asarray(radii, dtype=float), decimals)
    gaps = [float(np.hypot(*(p[j] - p[i]))) - r[i] - r[j] for i in range(len(r)) for j in range(i + 1, len(r))]
    return round(min(gaps), decimals) + 0.0  # + 0.0: no -0.0


def _relative_along_normal(positions, steps, radii, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """Each ball's step relative to the centre of mass (masses r^2) of the pair whose free-flight gap
    is smallest, along the line of their centres after one more frame at their steps ([N], zero for
    the other balls; not rounded), and that line's unit vector ((1, 0) when the centres coincide,
    with zeros). Inputs rounded to `decimals` places first, as in `free_flight_gap`."""
    p, s = (np.round(np.asarray(a, dtype=float), decimals) for a in (positions, steps))
    r = np.round(np.asarray(radii, dtype=float), decimals)
    ahead = p + s
    pairs = [(i, j) for i in range(len(r)) for j in range(i + 1, len(r))]
    i, j = min(pairs, key=lambda ij: np.hypot(*(ahead[ij[1]] - ahead[ij[0]])) - r[ij[0]] - r[ij[1]])
    out, axis = np.zeros(len(r)), ahead[j] - ahead[i]
    length = np.hypot(*axis)
    if length == 0:
        return out, np.array([1.0, 0.0])
    normal = axis / length
    m_i, m_j = r[i] ** 2, r[j] ** 2
    centre = (m_i * s[i] + m_j * s[j]) / (m_i + m_j)
    for k in (i, j):
        out[k] = np.dot(s[k] - centre, normal)
    return out, normal


def relative_normal_steps(positions, steps, radii, decimals: int) -> np.ndarray:
    """[N, 2]: each ball's step relative to the centre of mass (masses r^2) of the pair whose
    free-flight gap is smallest, projected on the line of their centres after one more frame at
    their steps; zero for the other balls. An elastic collision of the pair changes each step by
    -2 times this. Inputs rounded to `decimals` places first, as in `free_flight_gap`; so is the result."""
    along, normal = _relative_along_normal(positions, steps, radii, decimals)
    return np.round(along[:, None] * normal, decimals) + 0.0


def relative_normal_speeds(positions, steps, radii, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """The same relative steps as one signed number a ball along the line of centres ([N], rounded
    to `decimals`; normal_rel's <rel> block) and that line's unit vector [2]."""
    along, normal = _relative_along_normal(positions, steps, radii, decimals)
    return np.round(along, decimals) + 0.0, normal


def contact_fraction(positions, gap: float, radii, decimals: int) -> float:
    """The part of the next frame (0..1) the closest pair of balls moves at its old steps: up to the
    end of the physics step in which they first overlap, as the simulator turns them (PhyWorld's
    setup, pymunk at STEPS_PER_FRAME steps a frame: measured on 12 training collisions, positions
    after the contact within 0.002-0.012 units of the simulator's this way, 0.006-0.047 with the
    exact contact time, 0.05-0.75 with no timing). The contact time: the edge distance now over how
    much of it one step closes (linear head-on), that is, over the frame's free-flight `gap` (the
    written one). Inputs rounded to `decimals` places first, as in `free_flight_gap`, so the writer
    and the grammar get the same number."""
    now = free_flight_gap(positions, np.zeros_like(np.asarray(positions, dtype=float)), radii, decimals)
    after = gap
    if now <= 0 or after >= now:
        return 0.0
    contact = min(now / (now - after), 1.0)
    return float(np.ceil(round(contact * STEPS_PER_FRAME, 6)) / STEPS_PER_FRAME)


def timed_position(last, old_step, new_step, fraction: float, decimals: int) -> np.ndarray:
    """Where a ball is after a frame whose first `fraction` it moved at its old step and the rest at
    its new one (contact_timing), rounded to `decimals`; the writer and the grammar share it."""
    last, old_step, new_step = (np.round(np.asarray(a, dtype=float), decimals) for a in (last, old_step, new_step))
    return np.round(last + new_step + fraction * (old_step - new_step), decimals) + 0.0


class LanguageError(ValueError):
    """A sequence that breaks the format; the message names the token and what was expected."""


@dataclass
class Clip:
    """A clip read from a sequence. objects: colour, r, x, y, vx, vy per object (symbolic only);
    positions [F, N, 2] per generated frame (symbolic only); visual [F, K] ids in index order."""

    objects: list[dict] = field(default_factory=list)
    positions: np.ndarray | None = None
    visual: np.ndarray | None = None
    # [F, N, 2] per generated frame: frame_velocity as written; frame_displacement the step from
    # the last frame / FRAME_DT (units/s)
    velocities: np.ndarray | None = None


class PhysicsLanguage:
    def __init__(self, codebook_size: int, tokens_per_frame: int, decimals: int = 2, symbolic: bool = True,
                 scene_token: bool = True, little_endian: bool = True, frame_velocity: bool = False,
                 frame_displacement: bool = False, derived_positions: bool | None = None, state_steps: bool = False,
                 frame_acceleration: bool = False, contact_gap: bool = False, whole_jumps: bool = False,
                 signed_changes: bool = False, relative_steps: bool = False, relative_jumps: bool = False,
                 relative_per_ball: bool = False, restitution_jumps: bool = False, normal_rel: bool = False,
                 contact_timing: bool = False, state_big_endian: bool = False, keypoint_tokens: bool = False,
                 fine_tokens: int = 0):
        for name, on in (("frame_velocity", frame_velocity), ("frame_displacement", frame_displacement)):
            if on and not symbolic:
                raise LanguageError(f"{name} needs the symbolic format (the visual-only one writes no states)")
        if frame_velocity and frame_displacement:
            raise LanguageError("frame_velocity and frame_displacement are two formats of a frame: choose one")
        self.codebook_size, self.tokens_per_frame = codebook_size, tokens_per_frame
        self.decimals, self.symbolic, self.scene_token = decimals, symbolic, scene_token
        self.little_endian, self.frame_velocity = little_endian, frame_velocity
        self.frame_displacement = frame_displacement
        self.derived_positions = frame_displacement if derived_positions is None else derived_positions
        if self.derived_positions and not frame_displacement:
            raise LanguageError("derived_positions needs frame_displacement (the steps the positions are summed from)")
        if state_steps and not frame_displacement:
            raise LanguageError("state_steps needs frame_displacement (the per-frame steps it matches)")
        self.state_steps = state_steps
        if frame_acceleration and not (state_steps and self.derived_positions):
            raise LanguageError("frame_acceleration needs frame_displacement and state_steps (the steps it changes), "
                                "with derived positions")
        self.frame_acceleration = frame_acceleration
        for name, on in (("contact_gap", contact_gap), ("whole_jumps", whole_jumps), ("signed_changes", signed_changes)):
            if on and not frame_acceleration:
                raise LanguageError(f"{name} needs frame_acceleration (the changes of step it is about)")
        if signed_changes and not little_endian:
            raise LanguageError("signed_changes needs little_endian numbers")
        self.contact_gap, self.whole_jumps, self.signed_changes = contact_gap, whole_jumps, signed_changes
        if relative_steps and not contact_gap:
            raise LanguageError("relative_steps needs contact_gap (it is written where the gap is negative)")
        self.relative_steps = relative_steps
        if relative_jumps and not relative_steps:
            raise LanguageError("relative_jumps needs relative_steps (the relative steps it writes against)")
        self.relative_jumps = relative_jumps
        if relative_per_ball and not relative_steps:
            raise LanguageError("relative_per_ball needs relative_steps (the relative steps it places)")
        self.relative_per_ball = relative_per_ball
        if restitution_jumps and not relative_steps:
            raise LanguageError("restitution_jumps needs relative_steps (the relative steps its factors multiply)")
        if restitution_jumps and relative_jumps:
            raise LanguageError("restitution_jumps and relative_jumps are two ways to write a collision: choose one")
        self.restitution_jumps = restitution_jumps
        if normal_rel and not restitution_jumps:
            raise LanguageError("normal_rel needs restitution_jumps (the factors of the relative steps it writes)")
        if normal_rel and relative_per_ball:
            raise LanguageError("normal_rel writes the <rel> block after <rel>: it does not go with relative_per_ball")
        self.normal_rel = normal_rel
        if contact_timing and not restitution_jumps:
            raise LanguageError("contact_timing needs restitution_jumps (the collision frame whose position it times)")
        self.contact_timing = contact_timing
        if state_big_endian and not (little_endian and symbolic):
            raise LanguageError("state_big_endian turns the <state> block's little-endian numbers round: it needs "
                                "little_endian and the symbolic format")
        self.state_big_endian = state_big_endian
        if fine_tokens < 0 or fine_tokens > tokens_per_frame:
            raise LanguageError(f"fine_tokens: {fine_tokens} of a frame's {tokens_per_frame} tokens")
        # keypoint_tokens: a frame's `fine_tokens` finest tokens (the DDT keypoint and radius tokens, last in
        # the LM's order) are written <k0> ..., tokens of their own: as <v> ids they would share one embedding
        # with a coarse code of the same id (physar/lm/visual_embeddings.py)
        self.keypoint_tokens, self.fine_tokens = keypoint_tokens, fine_tokens
        colors = tuple(f"<{c}>" for c in COLOR_NAMES)
        visual = tuple(f"<v{i}>" for i in range(codebook_size))
        scenes = tuple(f"<{s}>" for s in SCENE_NAMES) if scene_token else ()
        # scene tokens last, so every other token keeps its id with or without them
        self.vocab = list(SPECIAL + STRUCTURE + FIELDS + colors + DIGITS + (SIGN, POINT) + visual + scenes)
        # last again, so earlier checkpoints' ids stay as they are
        self.vocab += ([GAP] if contact_gap else []) + ([PLUS] if signed_changes else []) + ([REL] if relative_steps else [])
        self.keypoint = tuple(f"<k{i}>" for i in range(codebook_size)) if keypoint_tokens else ()
        self.vocab += self.keypoint
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.colors, self.visual = colors, visual
        # The grammar's sets of allowed next tokens, built once: constrained decoding caches a
        # logits mask per set, keyed by the set's identity.
        one = {t: frozenset({t}) for t in STRUCTURE + FIELDS + ("<eos>", POINT, SIGN, GAP, REL) + DIGITS}
        digits = frozenset(DIGITS)
        self.expect = dict(one=one, colors=frozenset(colors), visual=frozenset(visual), keypoint=frozenset(self.keypoint),
                           digits=digits,
                           signed=digits | {SIGN}, zero_or_sign=frozenset({"<0>", SIGN, PLUS}), digits_or_point=digits | {POINT},
                           obj_or_end=frozenset({"<obj>", "</state>"}), nothing=frozenset())
        # Per visual slot of a frame (LM order, coarse first): the tokens it is written with and the
        # grammar's allowed set there; the finest `fine_tokens` slots are <k> tokens with keypoint_tokens.
        fine_from = tokens_per_frame - fine_tokens if keypoint_tokens else tokens_per_frame
        self.slot_vocab = tuple(self.keypoint if k >= fine_from else visual for k in range(tokens_per_frame))
        self.slot_sets = tuple(self.expect["keypoint" if k >= fine_from else "visual"] for k in range(tokens_per_frame))

    # --- writing ---------------------------------------------------------------------------

    def number(self, value: float, plus: bool = False, big_endian: bool = False) -> list[str]:
        """A number's tokens; `plus`: a positive one (not zero) begins with <+> (signed_changes);
        `big_endian`: a little-endian language's fixed width, most significant digit first."""
        text = f"{value:.{self.decimals}f}"
        if text.startswith("-") and float(text) == 0:
            text = text[1:]  # no "-0.00"
        if plus and float(text) > 0:
            return [PLUS] + self.number(value, big_endian=big_endian)
        sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
        whole, _, fraction = digits.partition(".")
        if len(whole) > MAX_INT_DIGITS:
            raise LanguageError(f"{value} has more than {MAX_INT_DIGITS} integer digits")
        if self.little_endian:
            padded = whole.zfill(MAX_INT_DIGITS) + fraction
            text = sign + (padded if big_endian else padded[::-1])
        return [SIGN if c == "-" else POINT if c == "." else f"<{c}>" for c in text]

    @property
    def writes_frame_velocities(self) -> bool:
        """Each frame carries each ball's velocity (frame_velocity) or step (frame_displacement)."""
        return self.frame_velocity or self.frame_displacement

    @property
    def number_length(self) -> int:
        """The most tokens a number takes."""
        return 1 + MAX_INT_DIGITS + self.decimals + (0 if self.little_endian else 1)

    def color(self, rgb) -> str:
        rgb = tuple(int(c) for c in rgb)
        if rgb not in PALETTE:
            raise LanguageError(f"colour {rgb} is not in the palette")
        return self.colors[PALETTE.index(rgb)]

    def frame_tokens(self, ids) -> list[str]:
        """A frame's ids in index order -> its visual tokens in LM order (coarse first)."""
        return [self.slot_vocab[k][int(i)] for k, i in enumerate(reversed(list(ids)))]

    def is_frame_slot(self, allowed) -> bool:
        """Whether a grammar's allowed set is one of a frame's visual tokens. By identity: the sets are
        built once in __init__. The keypoint_tokens guard matters because every empty frozenset is one
        object in CPython: without <k> tokens expect["keypoint"] is the grammar's `nothing`."""
        return allowed is self.expect["visual"] or (self.keypoint_tokens and allowed is self.expect["keypoint"])

    def prompt(self, visual_ids: np.ndarray, conditioning_frames: int, scene: str | None = None) -> list[str]:
        out = ["<clip>"]
        if self.scene_token:
            if scene not in SCENE_NAMES:
                raise LanguageError(f"scene {scene!r}: this model needs the clip's scene, one of {', '.join(SCENE_NAMES)}")
            out.append(f"<{scene}>")
        for ids in visual_ids[:conditioning_frames]:
            out += ["<frame>"] + self.frame_tokens(ids)
        return out

    def completion(self, record: dict, visual_ids: np.ndarray) -> list[str]:
        """From a metadata record (positions, velocities, radii, colors) and the clip's visual ids
        [T, K] (index order): everything after the conditioning frames."""
        cond = record["conditioning_frames"]
        positions, velocities = np.asarray(record["positions"]), np.asarray(record["velocities"])
        unit = 10.0**-self.decimals
        if self.frame_acceleration:  # each step the rounded true one; positions summed from the block's
            steps = np.rint(np.diff(positions, axis=0, prepend=positions[:1]) / unit)  # integers on the grid
            grid = np.rint(positions / unit)
            if self.whole_jumps:
                steps = self._whole_jumps(steps, grid, record)
            grid[cond:] = grid[cond - 1] + np.cumsum(steps[cond:], axis=0)
            changes = np.diff(steps, axis=0, prepend=steps[:1]) * unit
            record = {**record, "positions": grid * unit, "last_steps": steps[cond - 1] * unit}
            positions, summed_steps, steps = grid * unit, steps * unit, changes
        elif self.frame_displacement:  # positions on the written grid, steps as integers on it
            grid = np.rint(positions / unit)
            positions, steps = grid * unit, np.diff(grid, axis=0, prepend=grid[:1]) * unit
            record = {**record, "positions": positions}
        out = self.state_block(record, cond - 1) if self.symbolic else []
        used = set()  # restitution_jumps: the record's collisions written so far
        for k in range(cond, len(visual_ids)):
            out.append("<frame>")
            rel = None
            if self.contact_gap and len(record["radii"]) > 1:
                gap = free_flight_gap(positions[k - 1], summed_steps[k - 1], record["radii"], self.decimals)
                out += [GAP] + self.number(gap)
                if self.relative_steps and gap < 0:
                    rel, block = self.relative(positions[k - 1], summed_steps[k - 1], record["radii"])
                    out += [REL] + ([] if self.relative_per_ball else [t for value in block for t in self.number(value)])
                    if self.relative_jumps:  # each ball's new relative step: its change plus what the grammar takes away
                        steps = steps.copy()
                        steps[k] = np.round(steps[k] + rel, self.decimals)
                    if self.restitution_jumps:
                        positions, summed_steps, steps = self._restitution_frame(record, k, rel, positions, summed_steps,
                                                                                 steps, used)
                        if self.contact_timing:  # the frame's first part at the old steps, up to the contact
                            fraction = contact_fraction(positions[k - 1], gap, record["radii"], self.decimals)
                            timed = timed_position(positions[k - 1], summed_steps[k - 1], summed_steps[k], fraction,
                                                   self.decimals)
                            positions = positions.copy()
                            positions[k:] = positions[k:] + (timed - positions[k])
            if self.symbolic:
                for i, ((x, y), (vx, vy)) in enumerate(zip(positions[k], velocities[k])):
                    out.append("<p>")
                    if rel is not None and self.relative_per_ball:
                        out += self.number(rel[i, 0]) + self.number(rel[i, 1])
                    if self.frame_displacement:
                        out += self.number(steps[k, i, 0], self.signed_changes) + self.number(steps[k, i, 1], self.signed_changes)
                    out += self.number(x) + self.number(y)
                    if self.frame_velocity:
                        out += self.number(vx) + self.number(vy)
            out += self.frame_tokens(visual_ids[k])
        return out

    def relative(self, positions, steps, radii) -> tuple[np.ndarray, np.ndarray]:
        """The relative steps [N, 2] and the numbers the <rel> block writes: their x and y, or with
        normal_rel one signed number a ball along the line of centres (the vectors are that times
        the line's unit vector, so a line tilted by a reading's rounding writes no y components)."""
        if self.normal_rel:
            speeds, normal = relative_normal_speeds(positions, steps, radii, self.decimals)
            return speeds[:, None] * normal, speeds
        rel = relative_normal_steps(positions, steps, radii, self.decimals)
        return rel, rel.ravel()

    def _restitution_frame(self, record: dict, k: int, rel: np.ndarray, positions: np.ndarray,
                           summed_steps: np.ndarray, changes: np.ndarray, used: set):
        """restitution_jumps at frame k: the numbers written there become each relative step's factor
        (where rel is not zero), and the trajectory follows the step the grammar makes of them; the
        next frame's change brings the step back to the truth (a grid unit or two)."""
        positions, summed_steps, changes = positions.copy(), summed_steps.copy(), changes.copy()
        factor = np.round(self._restitution(record, k, rel, changes[k], used), self.decimals)
        if self.normal_rel:  # one factor a ball for its whole relative step; y writes the change beyond it
            moving = np.repeat(np.any(rel != 0, axis=1, keepdims=True), 2, axis=1)
            written = changes[k].copy()
            written[:, 1] = np.round(changes[k, :, 1] - (factor[:, 0] - 1) * rel[:, 1], self.decimals)
            written[:, 0] = factor[:, 0]
            beyond = np.where(moving, (factor[:, :1] - 1) * rel, 0.0)
            beyond[:, 1] += written[:, 1]
            new = np.where(moving, np.round(summed_steps[k - 1] + beyond, self.decimals), summed_steps[k])
            written = np.where(moving, written, changes[k])
        else:  # a factor for each component of the relative step that is not zero
            moving = rel != 0
            new = np.where(moving, np.round(summed_steps[k - 1] + (factor - 1) * rel, self.decimals), summed_steps[k])
            written = np.where(moving, factor, changes[k])
        delta = new - summed_steps[k]
        changes[k] = written
        if k + 1 < len(changes):
            changes[k + 1] = np.round(changes[k + 1] - delta, self.decimals)
        summed_steps[k] = new
        positions[k:] = positions[k:] + delta
        return positions, summed_steps, changes

    def _restitution(self, record: dict, k: int, rel: np.ndarray, change: np.ndarray, used: set) -> np.ndarray:
        """[N, 2]: each ball's new relative step over its old one, the same in x and y (both lie on
        the line of centres). From the simulator's velocities before and after the record's collision
        of the pair within a frame of k (centre of mass by the record's masses), each collision once
        (`used`: their indices so far); a frame of contact without one: from the grid's change at k
        (`change`), new relative step over old."""
        pair = sorted(np.flatnonzero(np.any(rel != 0, axis=1)).tolist())
        velocities = np.asarray(record["velocities"], dtype=float)
        masses = np.asarray(record.get("masses", np.square(record["radii"])), dtype=float)
        ratio = np.ones_like(rel)
        for n, (kc, a, b) in enumerate(record.get("collisions", [])):
            if n not in used and sorted((a, b)) == pair and abs(kc - k) <= 1 and 1 <= kc < len(velocities) - 1:
                used.add(n)
                before, after = velocities[kc - 1], velocities[kc + 1]
                for i in pair:
                    axis = rel[i] / np.hypot(*rel[i])
                    old = np.dot(before[i] - masses @ before / masses.sum(), axis)
                    new = np.dot(after[i] - masses @ after / masses.sum(), axis)
                    ratio[i] = new / old
                return ratio
        moving = rel != 0  # no recorded collision: the grid's change, as a new relative step over the old
        if self.normal_rel:  # along the relative step, one number a ball
            size = np.maximum((rel**2).sum(axis=1, keepdims=True), 1e-12)
            return np.repeat(((np.asarray(change) + rel) * rel).sum(axis=1, keepdims=True) / size, 2, axis=1)
        return np.where(moving, (np.asarray(change) + rel) / np.where(moving, rel, 1), 1.0)

    def _whole_jumps(self, steps: np.ndarray, grid: np.ndarray, record: dict) -> np.ndarray:
        """Steps (integers on the grid, [T, N, 2]) with each collision's change written whole in one
        frame: the first whose free-flight gap between the two balls is negative takes the step
        after the collision. The simulator's contact falls inside a frame, so its change is split
        over two frames in a proportion the LM would have to work out; written whole, the collision
        is one decision, and the balls turn back at most one step early (a one-frame velocity
        error of at most the jump times the part of the frame before contact)."""
        steps, unit, cond = steps.copy(), 10.0**-self.decimals, record["conditioning_frames"]
        for k, a, b in record.get("collisions", []):
            if k < cond or k + 2 > len(steps):
                continue
            pair = [a, b]
            radii = np.asarray(record["radii"])[pair]
            gap = free_flight_gap(grid[k - 1, pair] * unit, steps[k - 1, pair] * unit, radii, self.decimals)
            j = k if gap < 0 else k + 1
            if j + 1 < len(steps):
                steps[j, pair] = steps[j + 1, pair]
        return steps

    def state_block(self, record: dict, frame: int) -> list[str]:
        """<state> ... </state>: each ball's colour, radius, position and velocity at `frame`."""
        x_y, v = np.asarray(record["positions"])[frame], np.asarray(record["velocities"])[frame]
        if self.frame_acceleration:  # the step into this frame: what the next frames' changes add to
            v = np.asarray(record["last_steps"]) if "last_steps" in record else \
                x_y - np.asarray(record["positions"])[frame - 1]
        elif self.state_steps:
            v = v * FRAME_DT
        out = ["<state>"]
        for (r, rgb), (x, y), (vx, vy) in zip(zip(record["radii"], record["colors"]), x_y, v):
            out += ["<obj>", self.color(rgb)]
            for name, value in zip(FIELDS, (r, x, y, vx, vy)):
                out += [name] + self.number(value, big_endian=self.state_big_endian)
        return out + ["</state>"]

    @staticmethod
    def text(tokens: list[str]) -> str:
        return "".join(tokens)

    # --- reading ---------------------------------------------------------------------------

    def max_state_length(self, max_objects: int) -> int:
        """The longest <state> block the grammar allows (0 without one: visual-only)."""
        return 2 + max_objects * (2 + len(FIELDS) * (1 + self.number_length)) if self.symbolic else 0

    def max_completion_length(self, num_frames: int, max_objects: int) -> int:
        """The longest completion the grammar allows (numbers at their longest), <eos> included."""
        number = self.number_length
        state = self.max_state_length(max_objects)
        per_ball = 1 + (4 if self.writes_frame_velocities else 2) * number
        frame = 1 + (max_objects * per_ball if self.symbolic else 0) + self.tokens_per_frame
        frame += (1 + number) if self.contact_gap and max_objects > 1 else 0
        frame += (1 + 2 * max_objects * number) if self.relative_steps and max_objects > 1 else 0
        return state + num_frames * frame + 1

    def parse(self, tokens: list[str] | str, num_frames: int, max_objects: int | None = None) -> Clip:
        """Read a completion (token strings, or the text the tokenizer decodes to) of
        `num_frames` generated frames; raises LanguageError at the first malformed token."""
        if isinstance(tokens, str):
            tokens = split_tokens(tokens)
        parser = SequenceParser(self, num_frames, max_objects)
        for i, token in enumerate(tokens):
            parser.feed(token, i)
        if not parser.complete:
            raise LanguageError(f"sequence ends after {len(tokens)} tokens; expected {sorted(parser.allowed())[:5]}")
        return parser.result()

    def build_tokenizer(self):
        """A Hugging Face fast tokenizer over this vocabulary (BOS added to every encode)."""
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
        from transformers import PreTrainedTokenizerFast

        tk = Tokenizer(models.WordLevel(vocab=self.index, unk_token="<unk>"))
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                    pre_tokenizers.Split(Regex(r"<[^<>]+>"), behavior="isolated")])
        tk.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                          special_tokens=[("<bos>", self.index["<bos>"])])
        tk.decoder = decoders.Fuse()
        return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                       unk_token="<unk>", padding_side="left")


def object_order(objects: list[dict], colors) -> list[int | None]:
    """For each colour (the clip's balls), the index of the object the model named with it, or None."""
    return [next((j for j, o in enumerate(objects) if list(o["color"]) == list(c)), None) for c in colors]


def token_roles(tokens: list[str], lang: PhysicsLanguage) -> list[str]:
    """What each token of a completion says, for diagnostics: "state x" (a digit of the <state>
    block's x), "position y 0.1" (the tenths digit of a frame's y), "visual 3" (a frame's fourth
    visual token, coarse first), "state color", "structure"."""
    if not lang.little_endian:
        raise LanguageError("token roles are defined for little-endian numbers only (checkpoints since the scene token)")
    places = [f"{10.0 ** (k - lang.decimals):g}" for k in range(MAX_INT_DIGITS + lang.decimals)]  # as written
    axes = ("ax", "ay", "x", "y") if lang.frame_acceleration else ("dx", "dy", "x", "y") if lang.frame_displacement \
        else ("x", "y", "vx", "vy")
    roles, in_state, field, digit, slot, rel_frame = [], False, "", 0, 0, False
    for t in tokens:
        if t in ("<state>", "</state>"):
            in_state, role = t == "<state>", "structure"
        elif t in FIELDS or t in ("<p>", GAP, REL):
            field, digit, role = t[1:-1], 0, "structure"
            rel_frame |= t == REL
            if t == "<p>" and rel_frame and lang.relative_per_ball:  # two numbers of the ball's relative step first
                digit = -2 * len(places)
        elif t == "<frame>":
            slot, role, rel_frame = 0, "structure", False
        elif t[:2] in ("<v", "<k") and t[2:-1].isdigit():
            role, slot = f"visual {slot}", slot + 1
        elif t in DIGITS or t in (SIGN, PLUS):
            if in_state:
                role = f"state {field}"
            elif field in ("gap", "rel"):
                role = field
            elif digit < 0:
                role = "rel"
            else:  # <p> x y [vx vy] or <p> dx dy x y: numbers of len(places) digits each, a sign before any
                axis = axes[min(digit // len(places), 3)]
                role = f"position {axis} sign" if t in (SIGN, PLUS) else f"position {axis} {places[digit % len(places)]}"
            digit += t not in (SIGN, PLUS)
        elif t in lang.colors:
            role = "state color"
        else:
            role = "structure"
        roles.append(role)
    return roles


def split_tokens(text: str) -> list[str]:
    import re

    return re.findall(r"<[^<>]+>", text)


def given_state_block(prompt: list[str]) -> list[str]:
    """The <state> block a prompt ends with (given, e.g. read by the parser), for the completion's
    parser to read first; [] when the prompt holds none."""
    return prompt[len(prompt) - 1 - prompt[::-1].index("<state>"):] if "<state>" in prompt else []


def read_state_block(lang: PhysicsLanguage, tokens: list[str]) -> list[dict] | None:
    """The balls (colour, r, x, y, vx, vy in units/s) of the <state> block that `tokens` begin with,
    a completion's or one the language wrote; None when the block is broken or unfinished."""
    parser = SequenceParser(lang, 1)
    try:
        for token in tokens:
            parser.feed(token)
            if token == "</state>":
                return parser.objects
    except LanguageError:
        return None
    return None


class SequenceParser:
    """Reads a completion one token at a time. `allowed()` is the set of tokens that may come
    next; `feed` raises LanguageError for any other. Special tokens other than <eos> are never
    allowed; <eos> only when the clip is complete."""

    def __init__(self, lang: PhysicsLanguage, num_frames: int, max_objects: int | None = None):
        self.lang, self.num_frames = lang, num_frames
        self.max_objects = len(lang.colors) if max_objects is None else max_objects
        self.objects: list[dict] = []
        self.positions: list[list[tuple[float, float]]] = []
        self.velocities: list[list[tuple[float, float]]] = []
        self.visual: list[list[int]] = []
        self.done = False
        self._plan = self._grammar()
        self._expect = next(self._plan)

    # The grammar as a generator: it yields the set of allowed tokens and receives the token fed.
    def _grammar(self):
        lang, e = self.lang, self.lang.expect
        one = e["one"]
        if lang.symbolic:
            token = yield one["<state>"]
            while True:
                if len(self.objects) == self.max_objects:
                    token = yield one["</state>"]
                else:
                    token = yield (e["obj_or_end"] if self.objects else one["<obj>"])
                if token == "</state>":
                    break
                used = {lang.colors[PALETTE.index(tuple(o["color"]))] for o in self.objects}
                color = yield (e["colors"] - used) if used else e["colors"]  # one ball per colour
                obj = {"color": list(PALETTE[lang.colors.index(color)])}
                for name in FIELDS:
                    yield one[name]
                    obj[name[1:-1]] = yield from self._number(big_endian=lang.state_big_endian)
                if lang.state_steps:  # back to units/s
                    obj["vx"], obj["vy"] = obj["vx"] / FRAME_DT, obj["vy"] / FRAME_DT
                self.objects.append(obj)
        for _ in range(self.num_frames):
            yield one["<frame>"]
            taken, rel, factors = np.zeros((len(self.objects), 2)), None, np.zeros((len(self.objects), 2))
            fraction = 0.0  # contact_timing: the part of this frame before the contact
            if lang.contact_gap and len(self.objects) > 1:
                yield one[GAP]
                last = self.positions[-1] if self.positions else [(o["x"], o["y"]) for o in self.objects]
                steps = np.asarray(self.velocities[-1] if self.velocities else
                                   [(o["vx"], o["vy"]) for o in self.objects]) * FRAME_DT
                radii = [o["r"] for o in self.objects]
                gap = yield from self._exactly(free_flight_gap(last, steps, radii, lang.decimals))
                if lang.relative_steps and gap < 0:
                    yield one[REL]
                    rel, block = lang.relative(last, steps, radii)
                    for value in ([] if lang.relative_per_ball else block):
                        yield from self._exactly(value)
                    if lang.relative_jumps:  # the balls' <p> write new relative steps: the change is that less rel
                        taken = rel
                    if lang.restitution_jumps:  # the balls' <p> write factors of rel (where not zero)
                        factors = rel
                    if lang.contact_timing:
                        fraction = contact_fraction(last, gap, radii, lang.decimals)
            frame, speeds = [], []
            for i, obj in enumerate(self.objects if lang.symbolic else ()):
                yield one["<p>"]
                if rel is not None and lang.relative_per_ball:  # this ball's relative step, just before its own numbers
                    for value in rel[i]:
                        yield from self._exactly(value)
                if lang.frame_acceleration:  # the change of the step; the step itself is summed
                    ax = (yield from self._number(lang.signed_changes)) - taken[i, 0]
                    ay = (yield from self._number(lang.signed_changes)) - taken[i, 1]
                    if lang.normal_rel and factors[i].any():  # the factor of the whole relative step, then y's change beyond it
                        ax, ay = (ax - 1) * factors[i, 0], ay + (ax - 1) * factors[i, 1]
                    elif not lang.normal_rel:  # restitution_jumps: each number the factor of its component, where not zero
                        ax = (ax - 1) * factors[i, 0] if factors[i, 0] else ax
                        ay = (ay - 1) * factors[i, 1] if factors[i, 1] else ay
                    last_dx, last_dy = self.velocities[-1][i] if self.velocities else (obj["vx"], obj["vy"])
                    dx, dy = (round(last_dx * FRAME_DT + ax, lang.decimals), round(last_dy * FRAME_DT + ay, lang.decimals))
                    speeds.append((dx / FRAME_DT, dy / FRAME_DT))
                elif lang.frame_displacement:
                    dx = yield from self._number()
                    dy = yield from self._number()
                    speeds.append((dx / FRAME_DT, dy / FRAME_DT))
                if lang.derived_positions:  # the last position (the <state> block's first) plus the step
                    last_x, last_y = self.positions[-1][i] if self.positions else (obj["x"], obj["y"])
                    if fraction:  # contact_timing: the old step up to the contact, the new one after it
                        timed_x, timed_y = timed_position((last_x, last_y), (last_dx * FRAME_DT, last_dy * FRAME_DT),
                                                          (dx, dy), fraction, lang.decimals)
                        x = yield from self._exactly(timed_x)
                        y = yield from self._exactly(timed_y)
                    else:
                        x = yield from self._exactly(last_x + dx)
                        y = yield from self._exactly(last_y + dy)
                else:
                    x = yield from self._number()
                    y = yield from self._number()
                frame.append((x, y))
                if lang.frame_velocity:
                    vx = yield from self._number()
                    vy = yield from self._number()
                    speeds.append((vx, vy))
            self.positions.append(frame)
            self.velocities.append(speeds)
            ids = []
            for slot in range(lang.tokens_per_frame):
                token = yield lang.slot_sets[slot]
                ids.append(int(token[2:-1]))
            self.visual.append(ids[::-1])  # back to index order
        yield one["<eos>"]
        self.done = True
        yield e["nothing"]

    def _exactly(self, value: float):
        """The one way to write `value` (clipped to the language's range): each token is the only one allowed."""
        largest = 10**MAX_INT_DIGITS - 10.0**-self.lang.decimals
        value = min(max(value, -largest), largest)
        for token in self.lang.number(value):
            yield self.lang.expect["one"][token]
        return round(value, self.lang.decimals)

    def _number(self, plus: bool = False, big_endian: bool = False):
        """`plus` (signed_changes): a number that is not zero begins with <+> or <->, so one that
        begins with a digit is zero, every digit <0> (the writer's rule, kept by the grammar: an
        unsigned +0.2 would slip the decision past the sign; sft_v5_jumps wrote such y changes)."""
        e = self.lang.expect
        text = ""
        token = yield e["zero_or_sign" if plus else "signed"]
        zero = plus and token not in (SIGN, PLUS)  # an unsigned change: zero
        if token in (SIGN, PLUS):
            text = "-" if token == SIGN else ""
            token = yield e["digits"]
        if self.lang.little_endian:
            digits = token[1:-1]
            for _ in range(MAX_INT_DIGITS + self.lang.decimals - 1):
                token = yield e["one"]["<0>"] if zero else e["digits"]
                digits += token[1:-1]
            return float(text + (digits if big_endian else digits[::-1])) / 10 ** self.lang.decimals
        text += token[1:-1]
        for _ in range(MAX_INT_DIGITS):
            token = yield e["digits_or_point"] if len(text.lstrip("-")) < MAX_INT_DIGITS else e["one"][POINT]
            if token == POINT:
                break
            text += token[1:-1]
        text += "."
        for _ in range(self.lang.decimals):
            token = yield e["digits"]
            text += token[1:-1]
        return float(text)

    @property
    def complete(self) -> bool:
        """Every frame read (the closing <eos> is optional)."""
        return self.done or self._expect is self.lang.expect["one"]["<eos>"]

    def allowed(self) -> frozenset[str]:
        return self._expect

    def feed(self, token: str, position: int | None = None) -> None:
        if token not in self._expect:
            where = f"token {position} " if position is not None else ""
            shown = sorted(self._expect)
            expected = ", ".join(shown[:6]) + (f" (or {len(shown) - 6} more)" if len(shown) > 6 else "")
            raise LanguageError(f"{where}{token!r}: expected {expected or 'the end'} "
                                f"(after {len(self.visual)} of {self.num_frames} frames)")
        self._expect = self._plan.send(token)

    def result(self) -> Clip:
        def per_frame(values):
            return np.array(values, dtype=float).reshape(len(values), len(self.objects), 2)

        positions = per_frame(self.positions) if self.lang.symbolic else None
        velocities = per_frame(self.velocities) if self.lang.writes_frame_velocities else None
        return Clip(self.objects, positions, np.array(self.visual, dtype=np.int64), velocities)
