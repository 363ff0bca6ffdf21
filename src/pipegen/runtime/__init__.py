"""The shared runtime every target calls: start_run, gate, evaluate, promote, notify."""
