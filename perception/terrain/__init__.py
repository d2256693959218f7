"""terrain stage (see DESIGN.md)."""
