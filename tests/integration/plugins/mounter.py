"""Test plugin: gives user "mp" the mountpoint "m/" and hooks nothing else."""

from actormq.hooks import OK, Ok, Plugin


class Mounter(Plugin):
    name = "mounter"

    def on_client_authenticate(self, client):
        return Ok(mountpoint="m/") if client.username == "mp" else OK
