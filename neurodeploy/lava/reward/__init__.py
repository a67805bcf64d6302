"""The third factor in Lava networks (its own folder: Lava imports every module beside a Process when it looks for models)."""
