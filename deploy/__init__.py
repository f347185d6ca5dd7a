"""Not the platform: the deployments' own tools (``python -m deploy.grafana.build``)."""
