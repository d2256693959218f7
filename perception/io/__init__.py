"""io stage (see DESIGN.md)."""
