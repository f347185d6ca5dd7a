"""One module per ``mdp`` sub-command, each with ``add_parser`` and ``run``."""
