"""Literature learning tasks (``neurodeploy task NAME``): CLI name -> module (:mod:`neurodeploy.tasks.runner`)."""

TASKS = {
    "distal-reward": "neurodeploy.tasks.distal_reward",
    "pattern-detection": "neurodeploy.tasks.pattern_detection",
    "digits": "neurodeploy.tasks.digits",
    "song-miller-abbott": "neurodeploy.tasks.song_miller_abbott",
}
