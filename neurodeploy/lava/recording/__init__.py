"""Recording LearningDense (its own folder: Lava imports every module beside a Process when it looks for models)."""
