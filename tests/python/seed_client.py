# The seed's client.py (shared/seed/hello-world.txt) in Python 3, with the fewest changes.
# Each change from the seed is marked "change:".
import sys  # change: for the optional arguments

if __name__ == '__main__':
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001  # change: optional port
    sock.connect(('localhost', port))  # change: port was 8001
    import time
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 2)  # change: optional delay
    sock.send(b'1')  # change: send takes bytes
    print(sock.recv(1024).decode())  # change: print is a function, recv returns bytes
    sock.close()
