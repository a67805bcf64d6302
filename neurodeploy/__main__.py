"""``python -m neurodeploy``: the command line (:func:`neurodeploy.cli.main`)."""
from neurodeploy.cli import main

if __name__ == "__main__":
    main()
