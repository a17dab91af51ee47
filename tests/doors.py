"""A TCP front door for tests: it turns away the first connections (an HTTP status, or a
TCP connection closed at once) and then pipes the rest to a server byte for byte, so a
client meets a flaky front door exactly as it would on a real network; it counts every
connection it accepted."""

from __future__ import annotations

import socket
import threading
from typing import List

HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
HTTP_401 = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Door:
    """A TCP front door: the first ``refusals`` connections get ``answer`` (raw bytes to
    send before closing, or b"" to close at once); later ones are piped to ``port``."""

    def __init__(self, port: int, refusals: int, answer: bytes) -> None:
        self._target = port
        self._refusals = refusals
        self._answer = answer
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._sockets: List[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, name="door")
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            if self.accepted <= self._refusals:
                if self._answer:
                    client.recv(65536)  # the handshake request
                    client.sendall(self._answer)
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self._target))
            self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                thread = threading.Thread(target=self._pipe, args=(a, b), name="door-pipe")
                self._threads.append(thread)
                thread.start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self._listener.close()
        self._accepting.join(5)
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()
