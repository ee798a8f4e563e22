"""Interoperability with Mosquitto's command-line clients (Debian mosquitto-clients):
mosquitto_pub / mosquitto_sub at QoS 0/1/2 and MQTT 5 user properties."""

import shutil
import subprocess
import time

import pytest

from tests.integration.clients import connect, unique

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")),
                       reason="mosquitto_pub / mosquitto_sub not installed"),
]
HOST = "127.0.0.1"


def mosquitto_pub(port, topic, payload, qos, *extra):
    subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(port), "-i", unique("mpub"),
                    "-t", topic, "-m", payload, "-q", str(qos), *extra],
                   check=True, timeout=10, capture_output=True)


def mosquitto_sub_one(port, topic, qos, *extra, publish) -> str:
    """Run mosquitto_sub for one message; call publish() until it has one (it
    subscribes asynchronously); return its output line."""
    proc = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(port), "-i", unique("msub"),
                             "-t", topic, "-q", str(qos), "-C", "1", "-W", "10", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            publish()
            time.sleep(0.2)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"mosquitto_sub exited {proc.returncode}: {err}"
    return out.strip()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_reaches_a_subscriber(shared_broker, qos):
    topic = unique("mq")
    subscriber = connect(shared_broker.port, unique("sub"), version=4)
    subscriber.subscribe(topic, 2)
    mosquitto_pub(shared_broker.port, topic, "from mosquitto_pub", qos)
    message = subscriber.expect_one()
    assert (message.payload, message.qos) == (b"from mosquitto_pub", qos)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_sub_receives(shared_broker, qos):
    topic = unique("mq")
    publisher = connect(shared_broker.port, unique("pub"), version=4)
    line = mosquitto_sub_one(shared_broker.port, topic, qos, "-F", "%q %p",
                             publish=lambda: publisher.publish(topic, b"to mosquitto_sub", qos=2))
    assert line == f"{qos} to mosquitto_sub"


def test_mqtt5_user_property_from_mosquitto_pub(shared_broker):
    topic = unique("mq")
    subscriber = connect(shared_broker.port, unique("sub"))
    subscriber.subscribe(topic, 1)
    mosquitto_pub(shared_broker.port, topic, "v5", 1, "-V", "mqttv5",
                  "-D", "publish", "user-property", "colour", "blue")
    message = subscriber.expect_one()
    assert message.payload == b"v5"
    assert message.properties["user_property"] == [("colour", "blue")]


def test_mqtt5_user_property_to_mosquitto_sub(shared_broker):
    topic = unique("mq")
    publisher = connect(shared_broker.port, unique("pub"))

    def send():
        publisher.publish(topic, b"v5", qos=1, properties={"user_property": [("colour", "blue")]})

    line = mosquitto_sub_one(shared_broker.port, topic, 1, "-V", "mqttv5", "-F", "%P %p", publish=send)
    assert line == "colour:blue v5"
