"""pipeline stage (see DESIGN.md)."""
