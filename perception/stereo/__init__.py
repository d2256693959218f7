"""stereo stage (see DESIGN.md)."""
