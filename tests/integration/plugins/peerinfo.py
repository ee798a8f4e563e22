"""Test plugin: what hooks learn about a connected client (address, listener,
certificate), one JSON line per client.connected to `file`."""

import json

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import Plugin


class PeerInfo(Plugin):
    name = "peerinfo"
    config_schema = (Key("file", Kind.STR, "", "Where the lines go (JSON lines)."),)

    def start(self):
        self.out = open(self.settings["file"], "a", encoding="utf-8")

    def stop(self):
        self.out.close()

    def on_client_connected(self, client):
        self.out.write(json.dumps({
            "client_id": client.client_id, "peer_host": client.peer_host, "peer_port": client.peer_port,
            "listener": client.listener, "username": client.username, "mountpoint": client.mountpoint,
            "cert_cn": client.cert_cn, "cert_dn": client.cert_dn}) + "\n")
        self.out.flush()
