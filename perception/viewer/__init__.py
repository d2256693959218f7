"""The live overlay viewer (issue 6): `overlay` draws the pictures (also the `overlay` image topic), `server` serves
them to a browser. See docs/viewer.md.

    from perception.viewer.server import Viewer
    from perception.viewer.overlay import compose, map_image
"""
