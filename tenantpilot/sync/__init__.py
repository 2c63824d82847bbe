"""One sync run and the other way a snapshot comes in: Graph (run, snapshot, links, audit) or exported files (baseline, uploads)."""
