"""The docker Python SDK (7.x) against amber: published ports, volumes and networks.

Usage: python3 sdk_network.py unix:///path/to/amber.sock IMAGE HOST_PORT
"""
import sys
import time
import urllib.request

import docker

host, image, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = docker.DockerClient(base_url=host, version="auto")

vol = client.volumes.create("sdkvol")
assert vol.name == "sdkvol"
client.containers.run(image, ["sh", "-c", "echo sdk > /v/index.html"], volumes={"sdkvol": {"bind": "/v", "mode": "rw"}}, remove=True)

web = client.containers.run(
    image,
    ["httpd", "-f", "-p", "80", "-h", "/v"],
    detach=True,
    name="sdk-web",
    ports={"80/tcp": ("127.0.0.1", port)},
    volumes={"sdkvol": {"bind": "/v", "mode": "ro"}},
)
web.reload()
assert web.ports["80/tcp"][0]["HostPort"] == str(port), web.ports
body = None
for _ in range(50):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
        break
    except OSError:
        time.sleep(0.1)
assert body == b"sdk\n", body

net = client.networks.create("sdknet", driver="bridge")
net.connect(web, aliases=["www"])
out = client.containers.run(image, ["wget", "-q", "-O-", "http://www/"], network="sdknet", remove=True)
assert out == b"sdk\n", out
net.reload()
assert web.id in [c.id for c in net.containers], net.containers
net.disconnect(web)
web.remove(force=True)
net.remove()
assert "sdknet" not in [n.name for n in client.networks.list()]
vol.remove()
assert "sdkvol" not in [v.name for v in client.volumes.list()]
print("sdk network ok")
