"""Training: corpora, encoders, features, the training run, and exports and weight averages of its checkpoints."""
