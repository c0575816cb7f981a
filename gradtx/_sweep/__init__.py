"""Many hyperparameter settings in one compiled program, the LR range test, and the CLI."""
