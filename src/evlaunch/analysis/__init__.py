"""Analysis layer: pure functions over per-draw arrays (decision statistics, sensitivity, scenario discovery, conditions)."""
