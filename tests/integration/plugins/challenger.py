"""Test plugin: MQTT 5 enhanced authentication with method "challenge": the
client's first data is its name, the broker answers "nonce:<name>", the
client must send back "signed:<name>"; success carries "welcome" back."""

from actormq.hooks import NEXT, Continue, Error, Ok, Plugin


class Challenger(Plugin):
    name = "challenger"

    def on_client_enhanced_auth(self, client, exchange):
        if exchange.method != "challenge":
            return NEXT
        if exchange.state is None:
            name = (exchange.data or b"").decode()
            return Continue(b"nonce:" + name.encode(), state=name)
        if exchange.data == b"signed:" + exchange.state.encode():
            return Ok(auth_data=b"welcome")
        return Error(0x87, "bad signature")
