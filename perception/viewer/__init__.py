"""viewer stage (see DESIGN.md)."""
