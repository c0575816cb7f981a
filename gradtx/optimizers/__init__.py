"""One module per optimizer family: its state, its ``scale_by_<name>`` and its factories."""
