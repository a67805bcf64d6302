"""Front doors: other simulators' model definitions made into rule files (``brian2``)."""
