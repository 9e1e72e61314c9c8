#!/usr/bin/env python3
"""A 60-URL site on loopback where 5 URLs are slow: two drip a byte a
second forever, two stall after their headers, one never answers.

    python3 bench/slow/server.py PORT
"""
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW = {"/drip1", "/drip2", "/stall1", "/stall2", "/never"}
PAGES = [f"/p/{i}" for i in range(55)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def page(self, body, status=200):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        p = self.path
        if p == "/robots.txt":
            return self.page("User-agent: *\nAllow: /\n", 200)
        if p == "/":
            links = "".join(f'<a href="{u}">{u}</a> ' for u in PAGES[:30] + sorted(SLOW) + PAGES[30:])
            return self.page(f"<title>Home</title><p>{links}</p>")
        if p in PAGES:
            return self.page(f"<title>{p}</title><p>An ordinary page, {p}.</p>")
        if p.startswith("/drip"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                return
        if p.startswith("/stall"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3600)
            return
        if p == "/never":
            time.sleep(3600)
            return
        self.page("not found", 404)


class Server(ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
