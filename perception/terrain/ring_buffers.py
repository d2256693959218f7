"""The online classifier's class-balanced ring buffers (`perception.terrain.classifier`, module docstring step 5).

One fixed-capacity ring buffer per class: a frame's samples go into the buffer of their argmax class, so the class
ratio of the training set stays fixed however skewed the stream is (on real terrain most windows are ground). When
a frame holds more samples of a class than the buffer does, an evenly spaced subset is kept, which keeps the
spread over the image.
"""
from __future__ import annotations

import numpy as np


class RingBuffers:
    """One fixed-capacity ring buffer per class of (feature, target, weight, |x|^2 + 1, sum t log t).

    Targets are stored class-major (5 x buffers x capacity) so that `flat()` hands out the 5 x (5*capacity)
    layout the training step works in without a copy.
    """

    def __init__(self, n_classes: int, capacity: int, n_features: int):
        self.capacity = capacity
        self.x = np.zeros((n_classes, capacity, n_features), np.float32)
        self.t = np.zeros((n_classes, n_classes, capacity), np.float32)  # [target class, buffer, slot]
        self.w = np.zeros((n_classes, capacity), np.float32)  # 0 in empty slots: they take no part
        self.sq = np.zeros((n_classes, capacity), np.float32)
        self.negent = np.zeros((n_classes, capacity), np.float32)
        self.head = np.zeros(n_classes, np.int64)
        self.count = np.zeros(n_classes, np.int64)

    ARRAYS = ("x", "t", "w", "sq", "negent", "head", "count")

    def clear(self) -> None:
        for name in self.ARRAYS:
            getattr(self, name)[...] = 0

    def total(self) -> int:
        return int(self.count.sum())

    def flat(self):
        """(x N x F, t 5 x N, w N, sq N, negent N) over every slot, as views (empty slots have w = 0)."""
        n_classes, cap = self.w.shape
        return (self.x.reshape(n_classes * cap, -1), self.t.reshape(n_classes, n_classes * cap),
                self.w.reshape(-1), self.sq.reshape(-1), self.negent.reshape(-1))

    def push(self, x: np.ndarray, t: np.ndarray, w: np.ndarray, sq: np.ndarray, negent: np.ndarray) -> None:
        """Add samples (t class-major, 5 x N) to the buffer of their argmax class."""
        if self.capacity == 0 or len(x) == 0:
            return
        cls = np.argmax(t, axis=0)
        for c in range(self.w.shape[0]):
            rows = np.flatnonzero(cls == c)
            if rows.size == 0:
                continue
            if rows.size > self.capacity:  # keep an evenly spaced subset: spread over the image
                rows = rows[np.linspace(0, rows.size - 1, self.capacity).round().astype(np.int64)]
            slots = (self.head[c] + np.arange(rows.size)) % self.capacity
            self.x[c, slots] = x[rows]
            self.t[:, c, slots] = t[:, rows]
            self.w[c, slots] = w[rows]
            self.sq[c, slots] = sq[rows]
            self.negent[c, slots] = negent[rows]
            self.head[c] = (self.head[c] + rows.size) % self.capacity
            self.count[c] = min(self.capacity, int(self.count[c]) + rows.size)

