"""The ``mdp`` command: one entry point, one sub-command per service or tool.

This is the composition layer: it reads settings from the command line and the environment,
builds the objects of the other packages and runs them. No domain logic lives here.
"""
