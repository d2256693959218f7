"""Configuration of the synthetic world and the code tables its ground truth uses.

The tables here are the contract of the ground truth: terrain class codes, their traversability, semantic codes,
and the names of object classes. `docs/sim.md` prints them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# --- terrain classes (truth["terrain_class"], uint8; 255 = sky or a non-terrain object) -----------------------------
PATH, GRASS, GRAVEL, MUD, TALL_GRASS, ROCKS, TREES, WALLS = range(8)
TERRAIN_NONE = 255
TERRAIN_CLASSES = ("path", "short_grass", "gravel", "mud", "tall_grass", "rocks", "trees", "walls")
# traversability per terrain class: 1 = drive freely, 0 = lethal (truth["traversability"], float32; NaN = sky)
TRAVERSABILITY = (1.0, 0.9, 0.75, 0.35, 0.5, 0.1, 0.0, 0.0)
# the same as a planner cost 0..254 (Nav2 convention, 254 lethal): cost = round(254 * (1 - traversability))
COST = tuple(int(round(254 * (1.0 - t))) for t in TRAVERSABILITY)
VERTICAL_CLASSES = (TREES, WALLS)  # terrain classes that only exist as 3D objects, never as ground texture

# --- semantic classes (truth["semantic"], uint8) -------------------------------------------------------------------
SKY, ROAD, GROUND, VEGETATION, OBSTACLE, PEDESTRIAN, CYCLIST, CAR, TRUCK = range(9)
SEMANTIC_CLASSES = ("sky", "road", "ground", "vegetation", "obstacle", "pedestrian", "cyclist", "car", "truck")
# semantic code of each terrain class when it is seen as ground or as a static object
TERRAIN_TO_SEMANTIC = (ROAD, GROUND, GROUND, GROUND, VEGETATION, OBSTACLE, VEGETATION, OBSTACLE)

# colours (BGR) for overlays and documentation
TERRAIN_COLORS = (
    (128, 128, 128), (60, 200, 60), (200, 200, 160), (40, 70, 110), (30, 120, 30), (90, 60, 150), (0, 90, 0), (0, 0, 200),
)
SEMANTIC_COLORS = (
    (235, 206, 135), (128, 64, 128), (60, 180, 110), (35, 142, 107), (60, 60, 160), (60, 20, 220), (32, 11, 119),
    (142, 0, 0), (70, 0, 0),
)

# --- objects (truth["objects"][k]["cls"]) ----------------------------------------------------------------------------
ACTOR_CLASSES = ("pedestrian", "cyclist", "car", "truck")  # may move; not part of the terrain
OBSTACLE_CLASSES = ("tree", "rock", "wall", "bush")  # static, drawn in the top-down map
OBJECT_SEMANTIC = {"pedestrian": PEDESTRIAN, "cyclist": CYCLIST, "car": CAR, "truck": TRUCK,
                   "tree": VEGETATION, "rock": OBSTACLE, "wall": OBSTACLE, "bush": VEGETATION}
OBJECT_TERRAIN = {"pedestrian": TERRAIN_NONE, "cyclist": TERRAIN_NONE, "car": TERRAIN_NONE, "truck": TERRAIN_NONE,
                  "tree": TREES, "rock": ROCKS, "wall": WALLS, "bush": TALL_GRASS}

CHANGE_KINDS = ("appearance", "new_class", "none")


def parse_size(size: str | tuple[int, int]) -> tuple[int, int]:
    """'640x480' or (640, 480) -> (width, height)."""
    if isinstance(size, str):
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError as err:
            raise ValueError(f"size '{size}' is not WIDTHxHEIGHT, e.g. 640x480") from err
    else:
        w, h = (int(v) for v in size)
    if w < 16 or h < 16:
        raise ValueError(f"image size {w}x{h} is too small (at least 16x16)")
    return w, h


@dataclass
class SimConfig:
    """Everything that defines a drive. Two worlds with equal configs render identical frames.

    Geometry: the left camera is `camera_forward` ahead of base_link and `baseline/2` to its left, `camera_height`
    above the ground point under base_link, pitched down by `pitch_deg`; the right camera is `baseline` to the right
    of the left one along the optical x axis (an ideal rectified pair).

    `change_frame`: from this frame on the world changes (`change`="appearance": `change_class` looks different;
    "new_class": `change_class` does not exist before and appears at this frame; "none"). Default: frames // 2.
    """

    seed: int = 0
    width: int = 640
    height: int = 480
    frames: int = 100
    fps: float = 10.0
    baseline: float = 0.12
    camera_height: float = 1.0
    camera_forward: float = 0.3
    pitch_deg: float = 6.0
    hfov_deg: float = 66.0
    speed: float = 1.5  # m/s along the path
    path_width: float = 4.0
    change_frame: int | None = None
    change: str = "appearance"
    change_class: int = GRASS
    terrain_classes: tuple[int, ...] = (PATH, GRASS, GRAVEL, MUD, TALL_GRASS, ROCKS)
    obstacles: tuple[str, ...] = OBSTACLE_CLASSES
    actors: tuple[str, ...] = ACTOR_CLASSES
    actor_density: float = 4.0  # pedestrians, cyclists, cars and trucks per 100 m of road (some moving)
    tree_density: float = 1.0  # relative to the default forest
    bumps: float = 1.0  # amplitude of pitch/roll/heave from bumps, relative to default
    noise_sigma: float = 1.5  # sensor noise, DN of 255
    exposure_variation: float = 1.0  # relative amplitude of lighting and exposure changes along the drive
    epoch_ns: int = 1_700_000_000_000_000_000  # stamp of frame 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.change_frame is None:
            self.change_frame = self.frames // 2
        if self.change not in CHANGE_KINDS:
            raise ValueError(f"change '{self.change}' is not one of {', '.join(CHANGE_KINDS)}")
        if self.change_class not in (PATH, GRASS, GRAVEL, MUD, TALL_GRASS, ROCKS):
            raise ValueError(f"change_class {self.change_class} is not a ground class 0..5")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image size {self.width}x{self.height} is too small")
        if not 0.0 < self.baseline < 2.0:
            raise ValueError(f"baseline {self.baseline} m is out of range (0, 2)")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"hfov_deg {self.hfov_deg} is out of range [10, 150]")
        if self.frames < 1 or self.fps <= 0:
            raise ValueError("frames must be >= 1 and fps > 0")
        self.terrain_classes = tuple(int(c) for c in self.terrain_classes)
        if PATH not in self.terrain_classes or GRASS not in self.terrain_classes:
            raise ValueError("terrain_classes must include path (0) and short grass (1)")

    @classmethod
    def with_size(cls, size: str | tuple[int, int], **kw) -> "SimConfig":
        w, h = parse_size(size)
        return cls(width=w, height=h, **kw)

    @property
    def drive_length(self) -> float:
        return self.speed * self.frames / self.fps
