#!/usr/bin/env python3
"""Does a TLS server resume sessions? Connects, sends one GET (reading the whole response, so
TLS 1.3 session tickets sent after the handshake are received), then reconnects offering the
session. Prints "resumption: on" or "resumption: off". Usage: tls_probe.py PORT [PATH]"""
import socket
import ssl
import sys

port = int(sys.argv[1])
path = sys.argv[2] if len(sys.argv) > 2 else "/1k"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def fetch(session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            while s.recv(65536):
                pass
            return s.session, s.session_reused


try:
    sess, _ = fetch()
    _, reused = fetch(sess)
    print("resumption: " + ("on" if reused else "off"))
except OSError as e:
    print(f"resumption: unknown ({e})")
