"""Certificates for mutual TLS between the services where no mesh gives them (``mdp certs``,
``docs/security.md``): a development CA and the certificates it signs (:mod:`certs.authority`,
sans-I/O), their files (:mod:`certs.files`) and the TLS settings a service serves and calls
with (:mod:`certs.tls`). Imports nothing of ours: any service may use it."""
