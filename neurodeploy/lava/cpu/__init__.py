"""The ``lava-cpu`` process: any rule, floating point, on Lava's CPU backend."""
