"""Class-to-cost table: what a scene class means for the fused cost map, in Nav2 costs.

Each field is the Nav2 cost (perception.mapping.costs: 0 FREE_SPACE ... 252 graded, 254 LETHAL_OBSTACLE) of
ground seen as that class; 255 (NO_INFORMATION) marks classes that say nothing about the ground under them (sky),
so they leave the map cell unknown. Class names are matched without case, spaces, `_` or `-` ("SignSymbol" =
"sign_symbol"); names the table does not know get `default_cost`. Pixels whose confidence is below
`min_confidence` also give NO_INFORMATION.

The defaults are for a ground robot in CamVid-like streets: road and pavement free (the road a little dearer, as
vehicles use it), grass and dirt cheap, trees, poles, walls, vehicles and people lethal.

    >>> table = SceneCostTable()
    >>> table.lut(["Road", "Sky", "Car", "unheard-of"]).tolist()[:4]
    [10, 255, 254, 255]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np

from perception.mapping.costs import LETHAL_OBSTACLE, NO_INFORMATION
from perception.params import param, validate_config

_C = "Nav2 cost of ground seen as this class: 0 free .. 252 graded, 254 lethal, 255 no information"


def normalise_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


@dataclass(frozen=True)
class SceneCostTable:
    # CamVid classes
    sky: int = param(NO_INFORMATION, _C, 0, 255)
    building: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    pole: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    road: int = param(10, _C, 0, 255)
    pavement: int = param(0, _C, 0, 255)
    tree: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    sign_symbol: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    fence: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    car: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    pedestrian: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    bicyclist: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    # common names in other data sets (a user's own classes)
    sidewalk: int = param(0, _C, 0, 255)
    grass: int = param(30, _C, 0, 255)
    dirt: int = param(20, _C, 0, 255)
    gravel: int = param(20, _C, 0, 255)
    vegetation: int = param(150, _C, 0, 255)
    water: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    person: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    vehicle: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    obstacle: int = param(LETHAL_OBSTACLE, _C, 0, 255)
    default_cost: int = param(NO_INFORMATION, "cost of a class name the table does not know", 0, 255)
    min_confidence: float = param(0.5, "pixels less confident than this give NO_INFORMATION (255)", 0.0, 1.0)

    def __post_init__(self) -> None:
        validate_config(self)

    def cost_of(self, name: str) -> int:
        key = normalise_name(name)
        for f in fields(self):
            if f.name not in ("default_cost", "min_confidence") and normalise_name(f.name) == key:
                return int(getattr(self, f.name))
        return int(self.default_cost)

    def lut(self, class_names: list[str]) -> np.ndarray:
        """uint8 costs indexed by class index (256 entries; indices past the classes give NO_INFORMATION)."""
        table = np.full(256, NO_INFORMATION, np.uint8)
        table[: len(class_names)] = [self.cost_of(n) for n in class_names]
        return table

    def cost_image(self, class_mask: np.ndarray, class_names: list[str],
                   confidence: np.ndarray | None = None) -> np.ndarray:
        """HxW uint8 Nav2 cost per pixel (NO_INFORMATION where confidence < min_confidence)."""
        cost = self.lut(class_names)[class_mask]
        if confidence is not None and self.min_confidence > 0:
            cost = np.where(confidence < self.min_confidence, np.uint8(NO_INFORMATION), cost)
        return cost
