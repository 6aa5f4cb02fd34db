"""The docker Python SDK (7.x) against amber: version, import, list, tag, inspect, remove.

Usage: python3 sdk_images.py unix:///path/to/amber.sock /path/to/rootfs.tar
"""
import sys

import docker

host, tar = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=host, version="auto")
version = client.version()
assert version["ApiVersion"] == "1.45", version
assert client.ping() is True

with open(tar, "rb") as f:
    out = client.api.import_image_from_data(f.read(), repository="sdk/bb", tag="v1")
image = client.images.get("sdk/bb:v1")
assert image.id.startswith("sha256:"), image.id
assert image.tags == ["sdk/bb:v1"], image.tags
assert image.tag("sdk/bb", "v2") is True
assert sorted(client.images.get(image.id).tags) == ["sdk/bb:v1", "sdk/bb:v2"]
names = [t for i in client.images.list() for t in i.tags]
assert "sdk/bb:v2" in names, names
client.images.remove("sdk/bb:v2")
client.images.remove("sdk/bb:v1")
assert client.images.list() == []
try:
    client.images.get("nothere")
    raise AssertionError("expected ImageNotFound")
except docker.errors.ImageNotFound:
    pass
print("sdk ok")
