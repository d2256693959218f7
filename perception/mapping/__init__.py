"""mapping stage (see DESIGN.md)."""
