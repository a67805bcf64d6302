"""The Brian2 target: the rule as written (``brian2``) and in the learning engine's per-step order
(``brian2-step``), open loop, closed loop and networks; cpp_standalone builds and their cache."""
