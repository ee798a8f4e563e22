"""Mountpoints: what goes in mounted comes out as the client sent it."""

from hypothesis import given, strategies as st

from actormq.transport.mountpoint import expand, mount, unmount

levels = st.lists(st.text(st.characters(blacklist_characters="/+#$\x00", blacklist_categories=("Cs",)),
                          max_size=5), min_size=1, max_size=4).map("/".join)
mountpoints = st.sampled_from(["", "tenant1/", "a/b/", "x"])


@given(mountpoints, levels)
def test_unmount_undoes_mount(mountpoint, topic):
    assert unmount(mountpoint, mount(mountpoint, topic)) == topic
    assert mount(mountpoint, topic).startswith(mountpoint)


@given(mountpoints, levels)
def test_sys_and_shared(mountpoint, topic):
    assert mount(mountpoint, "$SYS/" + topic) == "$SYS/" + topic
    assert mount(mountpoint, f"$share/g/{topic}") == f"$share/g/{mountpoint}{topic}"


def test_expand():
    assert expand("users/%u/%c/", "dev1", "alice") == "users/alice/dev1/"
    assert expand("fixed/", "dev1", None) == "fixed/"
