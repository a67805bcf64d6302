"""The compilation: a rule lowered onto the learning engine's products, scaled into float and fixed plans
on its traffic (:mod:`.compilation`), the step semantics they follow (:mod:`.stepper`) and what Loihi
realises of them (:mod:`.loihi`). Below every target; imports no target."""
