#!/usr/bin/env python3
"""A Paddock client in Python, standard library only, written from README.md's protocol section.

Usage: paddock_client.py SOCKET_PATH [scenario]
Scenarios:
  initialize  -> prints the initialize result as JSON
  conformance -> initialize, system/check, then bad input; prints one JSON object of results
  calls JSON  -> JSON is a list of [method, params]; prints the list of responses
"""
import json
import socket
import sys


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, message):
        body = json.dumps(message).encode("utf-8")
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = None
        for line in header.decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return json.loads(body.decode("utf-8"))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("agent closed the connection")
        self.buf += chunk

    def call(self, method, params=None):
        request_id = self.next_id
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            answer = self.read()
            # Notifications (a "method", no "id") may arrive before the answer.
            if isinstance(answer, list) or answer.get("id") == request_id:
                return answer


def main():
    path = sys.argv[1]
    scenario = sys.argv[2] if len(sys.argv) > 2 else "initialize"
    client = Client(path)
    init = client.call("initialize", {"clientName": "python", "protocolVersion": "1.0"})
    if scenario == "initialize":
        print(json.dumps(init))
        return
    if scenario == "calls":
        print(json.dumps([client.call(method, params) for method, params in json.loads(sys.argv[3])]))
        return
    out = {"initialize": init}
    out["check"] = client.call("system/check", {})
    client.send_raw(b"Content-Length: 7\r\n\r\n{broken")
    out["parse_error"] = client.read()
    out["unknown_method"] = client.call("sandbox/teleport", {})
    out["bad_params"] = client.call("system/check", {"refresh": "please"})
    client.send_raw(b"Content-Length: 2\r\n\r\n[]")
    out["empty_batch"] = client.read()
    client.send([{"jsonrpc": "2.0", "id": "b1", "method": "system/ping", "params": {"data": "x"}},
                 {"jsonrpc": "2.0", "method": "system/ping"}])
    out["batch"] = client.read()
    out["ping"] = client.call("system/ping", {"data": "still alive"})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
