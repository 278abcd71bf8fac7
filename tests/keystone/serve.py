"""Serves Keystone's WSGI app on 127.0.0.1:PORT for the tests
(daemon/tests/keystone.rs): `python serve.py PORT CONFIG_FILE ACCESS_LOG`.

Why not gunicorn or uwsgi: oslo.config parses the process's argv, which
belongs to the server there, so Keystone refuses to start. Here argv is
cleared before Keystone sees it and the stdlib's threaded wsgiref server
carries the app. Each request is appended to ACCESS_LOG as one line
`METHOD PATH STATUS` (never a header, so never a token): the tests count
token validations with it. The server exits when its parent process is
gone, so a killed test binary leaves no Keystone behind.
"""

import os
import socketserver
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

port, config, access_log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.argv = sys.argv[:1]
os.environ["OS_KEYSTONE_CONFIG_FILES"] = config

from keystone.server import wsgi  # noqa: E402  (after argv and environment)

app = wsgi.initialize_public_application()
log_lock = threading.Lock()


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        path = self.path.split("?", 1)[0]
        with log_lock, open(access_log, "a") as f:
            f.write(f"{self.command} {path} {code}\n")

    def log_message(self, *args):
        pass


def exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
server = make_server("127.0.0.1", port, app, server_class=Server, handler_class=Handler)
print(f"keystone serving on 127.0.0.1:{port}", flush=True)
server.serve_forever()
