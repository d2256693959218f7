"""Fault: the perception node is killed (SIGKILL, no shutdown) mid-stream and started again.

The peer (tests/faults/peer.py, run in a private network namespace by the tests/ros machinery) is the camera
driver and the consumer: it gets a frame through the first node, kills it, goes on publishing while no node is
there, starts a new node and goes on publishing; the new node must find the peer again and the disparity of the
frames sent after the restart must arrive with their stamps. The publisher side must survive all of it.
Reduced form: one frame before and three after the kill (about 30 s); the full form repeats kill/restart cycles.
"""
from __future__ import annotations

import signal

import pytest

from tests.faults.test_sync_faults import run_peer

pytestmark = [pytest.mark.ros, pytest.mark.data]


@pytest.fixture(scope="module")
def restart(namespace_runner, euroc_bag, tmp_path_factory):
    return run_peer(namespace_runner, tmp_path_factory.mktemp("restart"), "restart", euroc_bag, timeout=240)


def test_the_first_node_works_and_dies_by_sigkill(restart):
    assert restart["ready_1"] and restart["before_kill_attempts"] > 0
    assert restart["first_frame_info_after_images"]  # its camera_info came after the images: waited for
    assert restart["killed_exit"] == -signal.SIGKILL


def test_the_publisher_survives_the_node_going_away(restart):
    assert restart["publisher_alive_while_down"]  # publishing with no subscriber raised nothing


def test_the_new_node_finds_the_peer_and_its_outputs_arrive(restart):
    assert restart["ready_2"], restart["_node_log"][-2000:]
    for stamp, attempts in restart["after_restart"].items():
        assert attempts > 0, f"no disparity for frame {stamp} sent after the restart"
        assert int(stamp) in restart["received"]
    assert restart["second_alive"]
    # the new node's own counters: it processed the frames sent after it started, and only those
    d = restart["diagnostics_2"]
    assert int(d["frames_processed"]) >= len(restart["after_restart"])
    assert restart["timings_s"]["restart"] < 60


def test_frames_sent_while_no_node_ran_do_not_come_out_of_the_new_one(restart):
    down = set(restart["received"]) - {int(s) for s in restart["after_restart"]} - set(restart["sent"][:1])
    assert not down, f"outputs for frames published while no node ran: {sorted(down)}"
