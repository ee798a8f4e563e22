"""Test plugin: one JSON line per publish authorization and message.publish fold it is
asked, written to `file` (which messages the decide and fold chains saw)."""

import json

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import NEXT, Plugin


class PublishLog(Plugin):
    name = "publish_log"
    config_schema = (Key("file", Kind.STR, "", "Where the calls go (JSON lines)."),)

    def start(self):
        self.out = open(self.settings["file"], "a", encoding="utf-8")

    def stop(self):
        self.out.close()

    def _write(self, point, message):
        self.out.write(json.dumps([point, message.topic_name, message.payload.decode()]) + "\n")
        self.out.flush()

    def on_client_authorize_publish(self, client, message):
        self._write("authorize", message)
        return NEXT

    def on_message_publish(self, client, message):
        self._write("publish", message)
