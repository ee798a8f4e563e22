"""Test plugin: every notify point, written as one JSON line per event to `file`."""

import json

from actormq.conf.keytypes import Key, Kind
from actormq.hooks import HookPoint, Mode, Plugin


class Recorder(Plugin):
    name = "recorder"
    config_schema = (Key("file", Kind.STR, "", "Where the events go (JSON lines)."),)

    def start(self):
        self.out = open(self.settings["file"], "a", encoding="utf-8")

    def stop(self):
        self.out.close()

    def record(self, point, *args):
        fields = []
        for arg in args:
            if hasattr(arg, "client_id"):
                fields.append(arg.client_id)
            elif hasattr(arg, "topic_name"):
                fields.append(arg.topic_name)
            elif hasattr(arg, "value"):
                fields.append(arg.value)
            elif isinstance(arg, (str, int)):
                fields.append(arg)
        self.out.write(json.dumps([point, *fields]) + "\n")
        self.out.flush()


def _hook(point):
    def hook(self, *args):
        self.record(point.dotted, *args)
    hook.__name__ = point.method
    return hook


for _point in HookPoint:
    if _point.mode is Mode.NOTIFY:
        setattr(Recorder, _point.method, _hook(_point))
