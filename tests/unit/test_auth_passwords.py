"""Password hashes and files: real mosquitto_passwd files, vmq-passwd $6$, bcrypt, `actormq passwd`."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import bcrypt
import pytest
from click.testing import CliRunner

from actormq.auth.hashes import HashError, make_pbkdf2_hash, parse_hash
from actormq.auth.passwd_file import PasswordFile, parse_password_lines
from actormq.cli import main

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
needs_mosquitto_passwd = pytest.mark.skipif(not shutil.which("mosquitto_passwd"),
                                            reason="mosquitto_passwd (Debian package mosquitto) not installed")


def _mosquitto_file(tmp_path, algorithm: str, user: str, password: str) -> str:
    path = tmp_path / f"pw-{algorithm}"
    subprocess.run([MOSQUITTO_PASSWD, "-H", algorithm, "-c", "-b", str(path), user, password], check=True)
    return str(path)


@needs_mosquitto_passwd
@pytest.mark.parametrize("algorithm,prefix", [("sha512", "$6$"), ("sha512-pbkdf2", "$7$")])
def test_mosquitto_passwd_hashes_verify(tmp_path, algorithm, prefix):
    path = _mosquitto_file(tmp_path, algorithm, "alice", "s3cret")
    passwords = PasswordFile.open(path)
    entry = passwords.lookup("alice")
    assert open(path).read().startswith("alice:" + prefix)
    assert entry.hash.verify(b"s3cret")
    assert not entry.hash.verify(b"s3cret ")
    assert not entry.superuser


def test_vmq_passwd_line_is_sha512_of_password_then_salt():
    salt = bytes(range(12))
    digest = hashlib.sha512(b"pw" + salt).digest()
    line = f"bob:$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    users, errors = parse_password_lines(line + "\n")
    assert errors == []
    assert users["bob"].hash.verify(b"pw") and not users["bob"].hash.verify(b"pW")


def test_bcrypt_hashes_verify():
    hashed = bcrypt.hashpw(b"x y", bcrypt.gensalt(rounds=4)).decode()
    assert hashed.startswith("$2b$")
    assert parse_hash(hashed).verify(b"x y") and not parse_hash(hashed).verify(b"x")


@pytest.mark.parametrize("text,fragment", [
    ("hunter2", "plain-text password refused"),
    ("$5$abc$def", "unknown hash scheme '5'"),
    ("$7$0$AAAA$AAAA", "$7$iterations$salt$hash"),
    ("$6$not base64!$AAAA", "salt is not base64"),
    ("$6$AAAA$AAAA", "expected 64"),
    ("$2b$04$short", "60 characters"),
])
def test_unreadable_hashes_say_why(text, fragment):
    with pytest.raises(HashError, match=None) as problem:
        parse_hash(text)
    assert fragment in str(problem.value)


def test_bad_lines_are_numbered_and_skipped():
    good = make_pbkdf2_hash("pw", iterations=2)
    text = f"# comment\n\nalice:{good}\nbob:plain\nroot:{good}:superuser\ncarol:{good}:admin\nnocolon\n"
    users, errors = parse_password_lines(text)
    assert sorted(users) == ["alice", "root"]
    assert users["root"].superuser and not users["alice"].superuser
    assert [error.line_number for error in errors] == [4, 6, 7]
    assert "plain-text" in errors[0].reason


def test_file_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "pw"
    path.write_text(f"alice:{make_pbkdf2_hash('one', iterations=2)}\n")
    now = [0.0]
    passwords = PasswordFile(str(path), clock=lambda: now[0])
    passwords.reload()
    assert passwords.lookup("alice").hash.verify(b"one")
    path.write_text(f"alice:{make_pbkdf2_hash('two', iterations=2)}\nbob:{make_pbkdf2_hash('b', iterations=2)}\n")
    now[0] += 5
    assert passwords.lookup("alice").hash.verify(b"two")
    assert passwords.lookup("bob") is not None


def test_unreadable_file_at_start_raises(tmp_path):
    with pytest.raises(OSError):
        PasswordFile.open(str(tmp_path / "missing"))


def _passwd(*args):
    return CliRunner().invoke(main, ["passwd", *args])


@needs_mosquitto_passwd
def test_actormq_passwd_writes_hashes_mosquitto_passwd_keeps(tmp_path):
    """Our $7$ lines survive mosquitto_passwd editing the same file, and we read its lines."""
    path = str(tmp_path / "pw")
    assert _passwd("-c", "-b", path, "alice", "a-pass").exit_code == 0
    assert _passwd("-b", path, "root", "r-pass", "-s").exit_code == 0
    subprocess.run([MOSQUITTO_PASSWD, "-b", path, "mosq", "m-pass"], check=True)
    users, errors = parse_password_lines(open(path).read())
    assert errors == []
    assert users["alice"].hash.verify(b"a-pass") and users["mosq"].hash.verify(b"m-pass")
    assert users["root"].superuser and users["root"].hash.verify(b"r-pass")
    assert open(path).read().startswith("alice:$7$101$")


def test_actormq_passwd_delete_prompt_and_errors(tmp_path):
    path = str(tmp_path / "pw")
    assert _passwd("-b", path, "alice", "x").exit_code == 2  # no -c, no file
    prompted = CliRunner().invoke(main, ["passwd", "-c", path, "alice"], input="pw\npw\n")
    assert prompted.exit_code == 0, prompted.stderr
    assert parse_password_lines(open(path).read())[0]["alice"].hash.verify(b"pw")
    mismatch = CliRunner().invoke(main, ["passwd", path, "bob"], input="a\nb\n")
    assert mismatch.exit_code == 2 and "do not match" in mismatch.stderr
    assert _passwd("-D", path, "alice").exit_code == 0
    assert "alice" not in open(path).read()
    missing = _passwd("-D", path, "alice")
    assert missing.exit_code == 2 and "not found" in missing.stderr
