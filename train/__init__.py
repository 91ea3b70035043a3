"""Training: corpora, encoders, features and the training run."""
