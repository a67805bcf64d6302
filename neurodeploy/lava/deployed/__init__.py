"""The Lava connection process that deployments use (``BoundedLearningDense``)."""
