"""sim stage (see DESIGN.md)."""
