#!/usr/bin/env python3
"""A TLS peer made with Python's ssl module, for sock's interoperability tests.

  tls_peer.py server CERT KEY ALPN     listens on 127.0.0.1, port 0; prints "listening on PORT";
                                       serves one client: echoes until close_notify, then
                                       closes with its own; prints "alpn NAME" first
  tls_peer.py client PORT CAFILE HOST  connects, checks the server as HOST, sends "from python",
                                       prints "reply TEXT" with what came back, then closes
  tls_peer.py unwrap CERT KEY          listens as `server`; serves one client: reads one record,
                                       then sends its close_notify and "plain" in one write,
                                       without waiting for the client's (STARTTLS's end, pipelined)
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


def unwrap(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print("listening on", listener.getsockname()[1], flush=True)
        listener.settimeout(10)
        conn, _ = listener.accept()
        conn.settimeout(10)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)

        def step(call):
            while True:
                try:
                    return call()
                except ssl.SSLWantReadError:
                    if outgoing.pending:
                        conn.sendall(outgoing.read())
                    data = conn.recv(65536)
                    if not data:
                        raise EOFError("the client left")
                    incoming.write(data)

        step(tls.do_handshake)
        step(lambda: tls.read(100))
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        conn.sendall(outgoing.read() + b"plain")
        while conn.recv(65536):  # the client's close_notify, then its end
            pass
        conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:5])
    elif sys.argv[1] == "unwrap":
        unwrap(*sys.argv[2:4])
    else:
        client(*sys.argv[2:5])
