#!/usr/bin/env python3
"""An OTLP/HTTP receiver that takes trace exports and drops them, for the overhead benches:
the hub exports to it as it would to a collector. Prints the exports and bytes it took when
stopped (Ctrl-C or SIGTERM).

    host/benches/external/otlp_sink.py [PORT]        # default 4318
"""
import http.server
import signal
import sys

taken = {"exports": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    # Keeps the connection open between exports, as a collector does: with HTTP/1.0 (the
    # default here) the hub opened a new connection for every export.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        self.rfile.read(length)
        taken["exports"] += 1
        taken["bytes"] += length
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"otlp sink: {taken['exports']} exports, {taken['bytes']} bytes", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
