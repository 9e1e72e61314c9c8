#!/usr/bin/env python3
"""A small documentation site on two loopback ports with a little of
everything `trawl report` shows: a 404 linked from several pages, a 500,
a slow page, redirect chains, a page served at two URLs, noindex and
nofollow pages, assets, a robots.txt with a Disallow and a Crawl-delay,
and a page whose title is markup.

    python3 bench/report/site.py PORT OTHER_PORT

PORT serves the handbook (127.0.0.1), OTHER_PORT a community site that
the handbook links to (crawl it with `--allow-host localhost`).
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OTHER = int(sys.argv[1]), int(sys.argv[2])
GUIDE, API = 40, 60
WORDS = ("The crawler reads each page once, keeps its links and text, and summarizes what it "
         "found. Politeness means one host is never pressed harder than its robots.txt and the "
         "rate allow. Every URL that is found is recorded, fetched or not, with the reason why.")


def page(title, body, head=""):
    return (f"<!doctype html><html><head><title>{title}</title>{head}</head>"
            f"<body><nav><a href=\"/\">Home</a></nav><main><h1>{title}</h1>{body}</main></body></html>")


def handbook(path):
    if path == "/robots.txt":
        return 200, "text/plain", "User-agent: *\nDisallow: /private/\nCrawl-delay: 0.05\n"
    if path == "/":
        links = "".join(f'<li><a href="/guide/{i}">Guide {i}</a></li>' for i in range(1, GUIDE + 1))
        links += "".join(f'<li><a href="/api/{i}">API {i}</a></li>' for i in range(1, API + 1))
        extra = ('<a href="/docs">Docs</a> <a href="/drafts/1">Draft</a> <a href="/index-of-archives">Archives</a> '
                 '<a href="/changelog.txt">Changelog</a> <a href="/data.json">Data</a> '
                 '<a href="/files/manual.pdf">Manual (PDF)</a> <a href="/img/logo.png">Logo</a> '
                 '<a href="/private/admin">Admin</a> <a href="/release-notes">Release notes</a> '
                 f'<a href="http://localhost:{OTHER}/">Community</a> <a href="https://example.org/">Elsewhere</a>')
        return 200, "text/html", page("Handbook", f"<p>{WORDS}</p><ul>{links}</ul><p>{extra}</p>")
    if path == "/docs":
        return 301, "/guide/", None
    if path == "/guide/":
        return 302, "/guide/1", None
    if path.startswith("/guide/"):
        rest = path[len("/guide/"):]
        n = rest.split("/")[0]
        if not n.isdigit() or not 1 <= int(n) <= GUIDE:
            return 404, "text/html", page("Not found", "<p>No such guide page.</p>")
        # `/guide/N/print` serves the very same document: duplicate content.
        n = int(n)
        body = f"<p>Guide chapter {n}. {WORDS}</p>"
        body += f'<a href="/guide/{n % GUIDE + 1}">Next</a> <a href="/guide/{n}/print">Print</a>'
        if n % 7 == 0:
            body += ' <a href="/guide/old-install">Installing (old)</a>'
        if n % 10 == 0:
            body += ' <a href="/download/latest">Download</a>'
        if n == 12:
            body += ' <a href="/slow">Benchmarks</a>'
        return 200, "text/html", page(f"Guide {n}", body)
    if path.startswith("/api/"):
        n = path[len("/api/"):]
        if not n.isdigit() or not 1 <= int(n) <= API:
            return 404, "text/html", page("Not found", "<p>No such API page.</p>")
        n = int(n)
        body = f"<p>API reference {n}. {WORDS * (1 + n % 4)}</p><a href=\"/api/{n % API + 1}\">Next</a>"
        if n % 13 == 0:
            body += ' <a href="/api/removed">Removed API</a>'
        return 200, "text/html", page(f"API {n}", body)
    if path == "/drafts/1":
        return 200, "text/html", page("Draft", f"<p>Not ready. {WORDS}</p>", '<meta name="robots" content="noindex">')
    if path == "/index-of-archives":
        links = "".join(f'<a href="/archive/{y}">{y}</a> ' for y in range(2019, 2025))
        return 200, "text/html", page("Archives", f"<p>Old material.</p>{links}", '<meta name="robots" content="nofollow">')
    if path == "/release-notes":
        return 200, "text/html", page("&lt;script&gt;alert('notes')&lt;/script&gt; Release notes", f"<p>{WORDS}</p>")
    if path == "/changelog.txt":
        return 200, "text/plain", "1.0: first release\n"
    if path == "/data.json":
        return 200, "application/json", '{"pages": 100}'
    if path == "/slow":
        time.sleep(1.5)
        return 200, "text/html", page("Benchmarks", f"<p>Slow to answer. {WORDS}</p>")
    if path == "/download/latest":
        return 500, "text/html", page("Server error", "<p>Something broke.</p>")
    return 404, "text/html", page("Not found", "<p>No such page.</p>")


def community(path):
    if path == "/":
        links = "".join(f'<a href="/forum/{i}">Thread {i}</a> ' for i in range(1, 21))
        return 200, "text/html", page("Community", f"<p>Questions and answers.</p>{links}")
    if path.startswith("/forum/"):
        n = path[len("/forum/"):]
        if n.isdigit() and 1 <= int(n) <= 20:
            n = int(n)
            extra = ' <a href="/forum/deleted">An old thread</a>' if n % 6 == 0 else ""
            return 200, "text/html", page(f"Thread {n}", f"<p>A question and its answers. {WORDS}</p>{extra}")
    return 404, "text/html", page("Not found", "<p>No such thread.</p>")


def handler(route):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            status, kind, body = route(self.path)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", kind)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = body.encode()
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


servers = [ThreadingHTTPServer(("127.0.0.1", PORT), handler(handbook)),
           ThreadingHTTPServer(("127.0.0.1", OTHER), handler(community))]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
servers[0].serve_forever()
