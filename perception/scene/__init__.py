"""scene stage (see DESIGN.md)."""
