"""The docker Python SDK (7.x) against amber: containers run, logs, exec, stop, remove.

Usage: python3 sdk_containers.py unix:///path/to/amber.sock IMAGE
"""
import sys

import docker

host, image = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=host, version="auto")

assert client.containers.run(image, ["echo", "hi"], remove=True) == b"hi\n"
try:
    client.containers.run(image, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    raise AssertionError("expected ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e

c = client.containers.run(image, ["sh", "-c", "echo ready; sleep 1000"], detach=True, name="sdk-box")
c.reload()
assert c.status == "running", c.status
code, out = c.exec_run(["sh", "-c", "echo $((2+3)); exit 4"])
assert (code, out) == (4, b"5\n"), (code, out)
assert any(x.name == "sdk-box" for x in client.containers.list())
c.stop(timeout=1)
c.reload()
assert c.status == "exited", c.status
assert b"ready" in c.logs()
assert c.wait()["StatusCode"] == 137
c.remove()
try:
    client.containers.get("sdk-box")
    raise AssertionError("expected NotFound")
except docker.errors.NotFound:
    pass
print("sdk containers ok")
