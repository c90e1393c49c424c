"""The Python originals that zoo's models mirror, serving zoo's scenario routes.

- `service`: the routes themselves (validation, bodies, the cpu work, the counter), shared.
- `listen`: the listening socket and the ready line every twin prints.
- `wsgi`: gunicorn with the `gevent`, `sync` and `gthread` workers.
- `threading_server`: `http.server.ThreadingHTTPServer` speaking HTTP/1.1.
- `tornado_server`, `aiohttp_server`, `uvicorn_server`: the event loops.
"""
