"""What every HTTP service of the platform serves with: uvicorn behind our guard of the
request's size and time (``web.guard``), one write per one-piece response
(``web.one_write``), problem+json errors (``web.problems``), the serving shell
(``web.server``), the token gate in front of a service's routes (``web.tokens``), and what the
token-checked JSON services share: the route guard, the bounded body and the readiness routes
(``web.routes``), a JSON body's fields (``web.bodies``) and the OpenAPI builders
(``web.openapi``)."""
