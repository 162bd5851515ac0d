# The seed's server.py (shared/seed/hello-world.txt) in Python 3, with the fewest changes.
# Each change from the seed is marked "change:".
import sys  # change: for the optional port argument

if __name__ == '__main__':
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001  # change: optional port, 0 = any
    sock.bind(('localhost', port))  # change: port was 8001
    sock.listen(5)
    print(sock.getsockname()[1], flush=True)  # change: tell a test which port it got
    while True:
        connection,address = sock.accept()
        try:
            connection.settimeout(5)
            buf = connection.recv(1024)
            if buf == b'1':  # change: recv returns bytes
                connection.send(b'welcome to server!')  # change: send takes bytes
            else:
                connection.send(b'please go out!')  # change: send takes bytes
        except socket.timeout:
            print('time out')  # change: print is a function
        connection.close()
