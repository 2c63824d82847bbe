"""Reading stored snapshots for people: compare, drift, explore, history, deviations, export."""
