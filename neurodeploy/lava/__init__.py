"""Lowering of rules to Lava's learning engine, the quantization plan, and the Lava backends."""
