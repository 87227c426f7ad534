"""A TLS peer ringloop did not write: Python's ssl module (OpenSSL), for tests/tls_interop.rs.

    tls_peer.py server CERT KEY VERSION ALPN   echo server on 127.0.0.1, one connection;
                                               prints "port N" then, after the connection,
                                               "version V alpn A bytes N"
    tls_peer.py client PORT CAFILE VERSION ALPN LEN
                                               connects to 127.0.0.1:PORT as "localhost",
                                               sends LEN pattern bytes 64 KiB at a time, reading
                                               each echo back, checks it byte for byte, prints
                                               "version V alpn A ok N"

VERSION is 1.2 or 1.3 (the only version the peer allows); ALPN a comma-separated list or "-".
The pattern is byte i = (i * 31) % 251, as the Rust side makes it.
"""

import socket
import ssl
import sys


def pattern(n):
    return bytes((i * 31) % 251 for i in range(n))


def pin_version(ctx, version):
    v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
    ctx.minimum_version = v
    ctx.maximum_version = v


def alpn_list(arg):
    return [] if arg == "-" else arg.split(",")


def server(cert, key, version, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    pin_version(ctx, version)
    if alpn_list(alpn):
        ctx.set_alpn_protocols(alpn_list(alpn))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(60)
    print("port", listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.settimeout(60)
    tls = ctx.wrap_socket(conn, server_side=True)
    total = 0
    while True:
        data = tls.recv(65536)
        if not data:
            break
        total += len(data)
        tls.sendall(data)
    summary = f"version {tls.version()} alpn {tls.selected_alpn_protocol() or '-'} bytes {total}"
    # The client's close_notify arrived (recv returned b""): answer with ours.
    tls.unwrap()
    conn.close()
    print(summary, flush=True)


def client(port, cafile, version, alpn, length):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    pin_version(ctx, version)
    if alpn_list(alpn):
        ctx.set_alpn_protocols(alpn_list(alpn))
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    data = pattern(int(length))
    # 64 KiB at a time, each read back before the next is sent: an SSLSocket must not be
    # read and written from two threads at once (OpenSSL's SSL object is not thread-safe).
    got = bytearray()
    for start in range(0, len(data), 65536):
        piece = data[start:start + 65536]
        tls.sendall(piece)
        want = len(got) + len(piece)
        while len(got) < want:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        if len(got) < want:
            break
    if bytes(got) != data:
        first = next((i for i in range(min(len(got), len(data))) if got[i] != data[i]), None)
        sys.exit(f"echo differs: got {len(got)} of {len(data)} bytes, first difference at {first}")
    summary = f"version {tls.version()} alpn {tls.selected_alpn_protocol() or '-'} ok {len(got)}"
    # A clean close: our close_notify, then the server's.
    tls.unwrap()
    raw.close()
    print(summary, flush=True)


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    {"server": server, "client": client}[role](*args)
