"""The Grafana dashboards and their builder (:mod:`deploy.grafana.build`)."""
