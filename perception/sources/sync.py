"""Stereo synchroniser: pairs left and right images by header stamp and attaches camera_info. Pure Python.

Used by the bag source and, later, by the ROS nodes. Feed messages in arrival order as (stamp_ns, payload);
every `add_*` call returns the events that became final, in stamp order:

* `SyncEvent(kind="pair")`: a left and a right whose stamps differ by at most `tolerance_ns`, each the other's
  nearest pending message, with the camera_info of each side (same stamp if there is one, else the latest
  older one, else the nearest newer one; None if the side never had one).
* `SyncEvent(kind="drop")`: a message (or a pair) that will never be used, with the reason:
  `stamps too far apart` (a left and a right that are each other's nearest but further apart than the tolerance:
  one dropped *frame*), `no right image` / `no left image` (the other stream went past it without a partner),
  `queue full` (a bounded queue overflowed), `out of order` (it became final after a newer event had been
  released). `drops` counts them by reason.

Reordering: arrival order may differ from stamp order. A message waits in a bounded, stamp-sorted queue until
it is matched, or until the OTHER stream has progressed more than `tolerance_ns + reorder_ns` past its stamp (so a
partner reordered by up to `reorder_ns` still finds it). Events are held and released in stamp order once no
pending or future message (assuming reordering of at most `reorder_ns`) can produce an older event. With
`reorder_ns=0` (live use) a pair is released as soon as it is complete; a bag reader can afford a longer hold.
Memory is bounded: at most `queue_size` pending messages per side and `4 * queue_size` held events.

Clock jumps: an image whose stamp is more than `tolerance_ns + reorder_ns + jump_ns` OLDER than the newest of its
own stream is not a late message but a clock that went back (a bag replayed again, a sim-time reset, a camera
re-synchronising its clock). The synchroniser then releases what it holds, drops every pending image with the
reason `clock jumped back`, forgets its time state (newest stamps, release order) and starts again from the new
message; `resets` counts these by reason and each is logged as a warning. Without this every frame after the jump
would be dropped as `out of order`. A jump forward needs no reset: images left waiting across it expire as the
other stream moves past them (`no right image` / `no left image`), and pairing resumes at the next pair.
"""
from __future__ import annotations

import bisect
import heapq
import itertools
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

NEVER = -(2**63)
JUMP_NS = 2_000_000_000  # default: a stamp this much older than its stream's newest means the clock went back

log = logging.getLogger("perception.sources")


@dataclass
class SyncEvent:
    kind: str  # "pair" | "drop"
    stamp_ns: int  # the left stamp (the right one for a lone right)
    left: Any = None
    right: Any = None
    left_stamp_ns: int | None = None
    right_stamp_ns: int | None = None
    left_info: Any = None
    right_info: Any = None
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "pair"

    @property
    def dt_ns(self) -> int | None:
        if self.left_stamp_ns is None or self.right_stamp_ns is None:
            return None
        return self.right_stamp_ns - self.left_stamp_ns


class _Queue:
    """Stamp-sorted bounded list of (stamp, seq, payload)."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, Any]] = []
        self.high = NEVER  # newest stamp ever seen

    def insert(self, item: tuple[int, int, Any]) -> None:
        bisect.insort(self.items, item, key=lambda x: (x[0], x[1]))
        self.high = max(self.high, item[0])

    def nearest(self, stamp: int) -> tuple[int, int, Any] | None:
        if not self.items:
            return None
        i = bisect.bisect_left(self.items, stamp, key=lambda x: x[0])
        cands = self.items[max(0, i - 1): i + 1]
        return min(cands, key=lambda x: (abs(x[0] - stamp), x[0]))

    def remove(self, item) -> None:
        self.items.remove(item)


class _InfoStore:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[tuple[int, Any]] = []

    def add(self, stamp: int, info: Any) -> None:
        i = bisect.bisect_right(self.items, stamp, key=lambda x: x[0])
        if i and self.items[i - 1][0] == stamp:
            self.items[i - 1] = (stamp, info)
        else:
            self.items.insert(i, (stamp, info))
        if len(self.items) > self.size:
            del self.items[0]

    def lookup(self, stamp: int) -> Any:
        if not self.items:
            return None
        i = bisect.bisect_right(self.items, stamp, key=lambda x: x[0])
        if i:
            return self.items[i - 1][1]  # same stamp or the latest older one
        return self.items[0][1]


class StereoSync:
    """See the module doc. `stereo=False` turns it into a mono pass-through that only attaches camera_info."""

    def __init__(self, tolerance_ns: int = 5_000_000, queue_size: int = 10, reorder_ns: int = 0, *,
                 stereo: bool = True, info_queue: int = 10, jump_ns: int = JUMP_NS) -> None:
        if tolerance_ns < 0 or queue_size < 1 or reorder_ns < 0 or jump_ns < 0:
            raise ValueError("tolerance_ns, reorder_ns and jump_ns must be >= 0 and queue_size >= 1")
        self.jump_ns = int(jump_ns)
        self.resets: Counter = Counter()
        self.tolerance_ns = int(tolerance_ns)
        self.queue_size = int(queue_size)
        self.reorder_ns = int(reorder_ns)
        self.stereo = stereo
        self.left = _Queue()
        self.right = _Queue()
        self.infos = {"left": _InfoStore(info_queue), "right": _InfoStore(info_queue)}
        self.drops: Counter = Counter()
        self.pairs = 0
        self._held: list[tuple[int, int, SyncEvent]] = []
        self._seq = itertools.count()
        self._released = NEVER

    # --- input ---------------------------------------------------------------------------------------------------
    def add(self, kind: str, stamp_ns: int, payload: Any) -> list[SyncEvent]:
        """kind: "left", "right", "left_info" or "right_info"."""
        if kind == "left":
            return self.add_left(stamp_ns, payload)
        if kind == "right":
            return self.add_right(stamp_ns, payload)
        if kind in ("left_info", "right_info"):
            return self.add_info(kind.split("_")[0], stamp_ns, payload)
        raise ValueError(f"unknown stream '{kind}'")

    def add_left(self, stamp_ns: int, payload: Any) -> list[SyncEvent]:
        stamp_ns = int(stamp_ns)
        early = self._check_jump("left", stamp_ns)
        if not self.stereo:
            self.left.high = max(self.left.high, stamp_ns)
            self._hold(SyncEvent("pair", stamp_ns, left=payload, left_stamp_ns=stamp_ns))
        else:
            self.left.insert((stamp_ns, next(self._seq), payload))
        return early + self._step()

    def add_right(self, stamp_ns: int, payload: Any) -> list[SyncEvent]:
        if not self.stereo:
            raise ValueError("a mono synchroniser takes no right images")
        stamp_ns = int(stamp_ns)
        early = self._check_jump("right", stamp_ns)
        self.right.insert((stamp_ns, next(self._seq), payload))
        return early + self._step()

    def _check_jump(self, side: str, stamp_ns: int) -> list[SyncEvent]:
        """A stamp far older than its stream's newest: the clock went back. Release what is held, drop what is
        pending (reason `clock jumped back`), forget the time state; returns the events that became final."""
        high = (self.left if side == "left" else self.right).high
        if high == NEVER or stamp_ns >= high - (self.tolerance_ns + self.reorder_ns + self.jump_ns):
            return []
        reason = "clock jumped back"
        self.resets[reason] += 1
        log.warning("stereo sync: %s stamp %d is %.3f s older than the newest %s image: the clock jumped back; "
                    "%d pending image(s) dropped, pairing restarts", side, stamp_ns, (high - stamp_ns) / 1e9, side,
                    len(self.left.items) + len(self.right.items))
        out = self._release(force=True)
        for queue, qside in ((self.left, "left"), (self.right, "right")):
            for item in list(queue.items):
                queue.remove(item)
                kw = {"left": item[2], "left_stamp_ns": item[0]} if qside == "left" else \
                    {"right": item[2], "right_stamp_ns": item[0]}
                self.drops[reason] += 1
                out.append(SyncEvent("drop", item[0], reason=reason,
                                     detail=f"{qside} stamp {item[0]} pending when a {side} image came with "
                                            f"stamp {stamp_ns}", **kw))
            queue.high = NEVER
        for store in self.infos.values():  # the calibration stays valid; only its place in time is forgotten
            store.items = [(NEVER, store.items[-1][1])] if store.items else []
        self._released = NEVER
        return out

    def add_info(self, side: str, stamp_ns: int, info: Any) -> list[SyncEvent]:
        self.infos[side].add(int(stamp_ns), info)
        return []

    def flush(self) -> list[SyncEvent]:
        """End of input: decide everything pending and release all held events."""
        self._match()
        for own, other, side in ((self.left, self.right, "left"), (self.right, self.left, "right")):
            while own.items:
                item = own.items[0]
                partner = other.nearest(item[0])
                if partner is not None and self._mutual(item, partner, own, other):
                    self._mismatch(item, partner, side)
                else:
                    self._drop(item, side, "no right image" if side == "left" else "no left image", own)
        return self._release(force=True)

    @property
    def pending(self) -> int:
        return len(self.left.items) + len(self.right.items) + len(self._held)

    # --- internals -----------------------------------------------------------------------------------------------
    def _step(self) -> list[SyncEvent]:
        if self.stereo:
            self._match()
            self._expire()
            for queue, side in ((self.left, "left"), (self.right, "right")):
                while len(queue.items) > self.queue_size:
                    self._drop(queue.items[0], side, "queue full", queue)
        return self._release()

    @staticmethod
    def _mutual(item, partner, own: _Queue, other: _Queue) -> bool:
        back = own.nearest(partner[0])
        return back is item

    def _match(self) -> None:
        changed = True
        while changed:
            changed = False
            for item in list(self.left.items):
                partner = self.right.nearest(item[0])
                if partner is None:
                    break
                if abs(partner[0] - item[0]) <= self.tolerance_ns and self._mutual(item, partner, self.left, self.right):
                    self.left.remove(item)
                    self.right.remove(partner)
                    self._hold(SyncEvent("pair", item[0], left=item[2], right=partner[2], left_stamp_ns=item[0],
                                         right_stamp_ns=partner[0]))
                    changed = True
                    break

    def _expired(self, item, other: _Queue) -> bool:
        return other.high > item[0] + self.tolerance_ns + self.reorder_ns

    def _expire(self) -> None:
        changed = True
        while changed:
            changed = False
            for own, other, side in ((self.left, self.right, "left"), (self.right, self.left, "right")):
                for item in list(own.items):
                    if not self._expired(item, other):
                        continue
                    partner = other.nearest(item[0])
                    if partner is None or not self._mutual(item, partner, own, other):
                        self._drop(item, side, "no right image" if side == "left" else "no left image", own)
                        changed = True
                    elif self._expired(partner, own):
                        self._mismatch(item, partner, side)
                        changed = True
                    if changed:
                        break
                if changed:
                    break

    def _mismatch(self, item, partner, side: str) -> None:
        left, right = (item, partner) if side == "left" else (partner, item)
        self.left.remove(left)
        self.right.remove(right)
        dt = (right[0] - left[0]) / 1e6
        self._hold(SyncEvent(
            "drop", left[0], left=left[2], right=right[2], left_stamp_ns=left[0], right_stamp_ns=right[0],
            reason="stamps too far apart",
            detail=f"right - left = {dt:+.1f} ms, tolerance {self.tolerance_ns / 1e6:.1f} ms",
        ))

    def _drop(self, item, side: str, reason: str, queue: _Queue) -> None:
        queue.remove(item)
        other = self.right if side == "left" else self.left
        near = other.nearest(item[0])
        detail = f"{side} stamp {item[0]}"
        if reason != "queue full":
            detail += f": no {'right' if side == 'left' else 'left'} image within {self.tolerance_ns / 1e6:.1f} ms"
            if near is not None:
                detail += f" (nearest pending {(near[0] - item[0]) / 1e6:+.1f} ms)"
        kw = {"left": item[2], "left_stamp_ns": item[0]} if side == "left" else {"right": item[2], "right_stamp_ns": item[0]}
        self._hold(SyncEvent("drop", item[0], reason=reason, detail=detail, **kw))

    def _hold(self, event: SyncEvent) -> None:
        heapq.heappush(self._held, (event.stamp_ns, next(self._seq), event))

    def _release(self, force: bool = False) -> list[SyncEvent]:
        if force:
            bound = 2**63
        else:
            highs = [self.left.high] + ([self.right.high] if self.stereo else [])
            bound = min(h - self.reorder_ns for h in highs)
            for q in (self.left, self.right):
                if q.items:
                    bound = min(bound, q.items[0][0] - 1)
        out = []
        while self._held and (self._held[0][0] <= bound or len(self._held) > 4 * self.queue_size):
            _, _, event = heapq.heappop(self._held)
            if event.stamp_ns < self._released:
                self.drops["out of order"] += 1
                event = SyncEvent("drop", event.stamp_ns, left=event.left, right=event.right,
                                  left_stamp_ns=event.left_stamp_ns, right_stamp_ns=event.right_stamp_ns,
                                  reason="out of order",
                                  detail=f"stamp {event.stamp_ns} completed after {self._released} was released")
            else:
                self._released = event.stamp_ns
                if event.kind == "pair":
                    event.left_info = self.infos["left"].lookup(event.stamp_ns)
                    if self.stereo:
                        event.right_info = self.infos["right"].lookup(event.right_stamp_ns)
                    self.pairs += 1
                else:
                    self.drops[event.reason] += 1
            out.append(event)
        return out


__all__ = ["StereoSync", "SyncEvent"]
