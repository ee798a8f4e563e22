"""EMQX 4's base62 (`emqx_base62`): 6 bits a character from A-Z a-z 0-8, values 61..63 as "9A".."9C".

Not the numeric base 62 of other libraries: an EMQX web hook endpoint that
decodes `encoding_of_payload_field = base62` expects exactly this.
"""

from __future__ import annotations

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz012345678"
_CHARS = tuple(_ALPHABET) + ("9A", "9B", "9C")
_VALUES = {char: value for value, char in enumerate(_ALPHABET)}


def encode(data: bytes) -> str:
    out = []
    whole = len(data) - len(data) % 3
    for start in range(0, whole, 3):
        group = int.from_bytes(data[start:start + 3], "big")
        out += (_CHARS[group >> 18], _CHARS[(group >> 12) & 63], _CHARS[(group >> 6) & 63], _CHARS[group & 63])
    rest = data[whole:]
    if len(rest) == 2:
        group = int.from_bytes(rest, "big")  # 16 bits: 6 + 6 + 4
        out += (_CHARS[group >> 10], _CHARS[(group >> 4) & 63], _CHARS[group & 15])
    elif len(rest) == 1:
        out += (_CHARS[rest[0] >> 2], _CHARS[rest[0] & 3])   # 8 bits: 6 + 2
    return "".join(out)


def decode(text: str) -> bytes:
    values = []
    index = 0
    while index < len(text):
        if text[index] == "9":
            values.append(61 + ord(text[index + 1]) - ord("A"))
            index += 2
        else:
            values.append(_VALUES[text[index]])
            index += 1
    bits = len(values) * 6
    tail = {0: 0, 2: 2, 3: 4}[len(values) % 4]  # the last character holds 2 or 4 bits
    number = 0
    for position, value in enumerate(values):
        last = position == len(values) - 1 and tail
        number = (number << (tail if last else 6)) | value
    bits = bits - 6 + tail if tail else bits
    return number.to_bytes(bits // 8, "big") if bits else b""
