#!/usr/bin/env python3
"""A TLS peer made with Python's ssl module, for sock's interoperability tests.

  tls_peer.py server CERT KEY ALPN     listens on 127.0.0.1, port 0; prints "listening on PORT";
                                       serves one client: echoes until close_notify, then
                                       closes with its own; prints "alpn NAME" first
  tls_peer.py client PORT CAFILE HOST  connects, checks the server as HOST, sends "from python",
                                       prints "reply TEXT" with what came back, then closes
Every wait is bounded (10 s).
"""
import socket
import ssl
import sys


def server(cert, key, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols([alpn])
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print("listening on", listener.getsockname()[1], flush=True)
        listener.settimeout(10)
        conn, _ = listener.accept()
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            print("alpn", tls.selected_alpn_protocol(), flush=True)
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                tls.sendall(data)
            tls.unwrap()
    print("done", flush=True)


def client(port, cafile, host):
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host) as tls:
            tls.sendall(b"from python")
            reply = b""
            while True:
                data = tls.recv(100)
                if not data:
                    break
                reply += data
            print("reply", reply.decode(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:5])
    else:
        client(*sys.argv[2:5])
