"""Pure: prices and what a run costs."""
